"""Networks as objects: `minirun network create/ls/inspect/rm/prune` and the default network.

A network is a record (name, subnet, gateway, bridge name, gateway mode). Its
kernel objects are the bridge and the network-wide firewall rules:

- a network made with `network create` gets them at once, as Docker's do (the
  lesson builds the switch before plugging hosts in), and keeps them until
  `network rm` -- also while no container is attached. The record is written
  first, with a `NAME.creating` marker that goes once the kernel objects are
  complete: a `network create` killed midway is rolled back by the next
  `network create` of that name or by `network rm` (the bridge only if it carries
  the network's MAC).
- the default network `bridge` stays lazy: made by its first container, removed
  with its last, so a host where minirun runs nothing carries nothing of it.

Gateway modes (Docker 28's names, `-o com.docker.network.bridge.gateway_mode_ipv4=`):
`nat` (default: egress masqueraded, other hosts reach only published ports, at
the host's address), `routed` (no masquerade; other hosts with a route to the
subnet via this host reach the PUBLISHED container ports at the container's own
address, and the container sees their real address), `nat-unprotected`
(masquerade, and routed access to every port).
"""
from __future__ import annotations

import ipaddress
import re
import time
from pathlib import Path
from ..tuples import NamedTuple

from .. import fsutil
from ..fsutil import sha256_hex
from ..errors import Conflict, MinirunError, NotFound, UsageError
from ..spec import check_name
from ..state import Paths, all_containers
from .ipam import Ipam, choose_free_subnet, parse_network, subnet_overlaps

DEFAULT_NETWORK = "bridge"
DEFAULT_BRIDGE = "minirun0"
# Never overlap Docker's and podman's defaults, whatever the host's routes say.
RESERVED = ["172.17.0.0/16", "10.88.0.0/16"]
# The default network: a /16 (65,534 addresses, like Docker's docker0 and podman's
# 10.88.0.0/16), the first of 10.99-10.127 that clashes with nothing; if every /16 there
# touches a host route, a /24 of 10.99.0.0/16 as before.
DEFAULT_CANDIDATES = ([f"10.{i}.0.0/16" for i in range(99, 128)]
                      + [f"10.99.{i}.0/24" for i in range(256)])
# `network create` without --subnet: a /20 (4,094 addresses; Docker's second pool hands out
# /20s too) of 10.128.0.0/12, clear of the default network's range
CREATE_CANDIDATES = [f"10.{i}.{j}.0/20" for i in range(128, 144) for j in range(0, 256, 16)]
# what the kernel takes as an interface name (not "." nor "..")
IFNAME_RE = re.compile(r"^(?!\.{1,2}$)[a-zA-Z0-9_.-]{1,15}$")
# Ranges no bridge network may touch (RFC 6890): a subnet there would capture the host's
# own loopback, link-local (cloud metadata), multicast or broadcast traffic.
GATEWAY_MODES = ("nat", "routed", "nat-unprotected")
# `network create -o KEY=VALUE`: the Docker options minirun understands
OPT_GATEWAY_MODE = "com.docker.network.bridge.gateway_mode_ipv4"
OPT_BRIDGE_NAME = "com.docker.network.bridge.name"
SPECIAL_RANGES = (("0.0.0.0/8", "this network"), ("127.0.0.0/8", "loopback"),
                  ("169.254.0.0/16", "link-local"), ("224.0.0.0/4", "multicast"),
                  ("240.0.0.0/4", "class E and broadcast"))


class Network(NamedTuple):
    name: str
    subnet: str
    gateway: str
    bridge: str
    driver: str = "bridge"
    created: float = 0.0
    mode: str = "nat"  # gateway mode: nat | routed | nat-unprotected (records before: nat)

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen


def _network(data: dict) -> Network:
    """A record as written by any version: unknown keys ignored, missing ones defaulted."""
    fields = Network._fields
    return Network(**{k: v for k, v in data.items() if k in fields})


def parse_options(opts: tuple[str, ...] | list[str], routed: bool = False,
                  bridge: str | None = None) -> tuple[str, str | None]:
    """`--routed` and `-o KEY=VALUE` -> (gateway mode, bridge name); unknown keys refused."""
    mode = "routed" if routed else None
    for opt in opts:
        key, sep, value = opt.partition("=")
        if not sep:
            raise UsageError(f"invalid option {opt!r}: expected KEY=VALUE")
        if key == OPT_GATEWAY_MODE:
            if value == "isolated":
                raise UsageError(f"{key}=isolated is not supported by minirun")
            if value not in GATEWAY_MODES:
                raise UsageError(f"invalid {key} {value!r} (choose from "
                                 f"{', '.join(GATEWAY_MODES)})")
            if mode is not None and mode != value:
                raise UsageError(f"conflicting gateway modes {mode!r} and {value!r}")
            mode = value
        elif key == OPT_BRIDGE_NAME:
            if bridge is not None and bridge != value:
                raise UsageError(f"conflicting bridge names {bridge!r} and {value!r}")
            bridge = value
        else:
            raise UsageError(f"unknown network option {key!r} (known: {OPT_GATEWAY_MODE}, "
                             f"{OPT_BRIDGE_NAME})")
    return mode or "nat", bridge


class NetworkStore:
    def __init__(self, paths: Paths):
        self.paths = paths
        self.dir = paths.networks

    @property
    def lock_path(self) -> Path:
        return self.paths.runroot / "networks.lock"

    def record_path(self, name: str) -> Path:
        return self.dir / f"{name}.json"

    def ipam(self, net: Network) -> Ipam:
        return Ipam(self.dir / net.name / "ipam", net.subnet, net.gateway, network=net.name)

    def net_lock(self, net: Network):
        """Serialises bridge creation/removal against attach/detach on one network."""
        return fsutil.locked(self.paths.runroot / f"network-{net.name}.lock")

    def creating_path(self, name: str) -> Path:
        """Present while `network create NAME` has not finished making its kernel objects."""
        return self.dir / f"{name}~creating"  # "~" is in no network name

    def all(self) -> list[Network]:
        out = []
        if self.dir.exists():
            for p in sorted(self.dir.glob("*.json")):
                data = fsutil.read_json(p)
                if data:
                    out.append(_network(data))
        return out

    def get(self, name: str) -> Network:
        if name in (DEFAULT_NETWORK, "default"):
            return self.default()
        data = fsutil.read_json(self.record_path(name))
        if data is None:
            raise NotFound(f"no such network: {name}")
        return _network(data)

    def default(self) -> Network:
        data = fsutil.read_json(self.record_path(DEFAULT_NETWORK))
        if data is not None:
            return _network(data)
        with fsutil.locked(self.lock_path):
            data = fsutil.read_json(self.record_path(DEFAULT_NETWORK))
            if data is not None:
                return _network(data)
            in_use = RESERVED + self._host_routes() + [n.subnet for n in self.all()]
            subnet = choose_free_subnet(DEFAULT_CANDIDATES, in_use)
            if subnet is None:
                raise Conflict("no free subnet for the default network in 10.99.0.0/16 - "
                               "10.127.0.0/16: "
                               "create one with `minirun network create --subnet ...`")
            gw = str(next(ipaddress.ip_network(subnet).hosts()))
            net = Network(DEFAULT_NETWORK, subnet, gw, DEFAULT_BRIDGE, created=time.time())
            fsutil.write_json(self.record_path(net.name), net._asdict())
            return net

    def create(self, name: str, subnet: str | None = None, gateway: str | None = None,
               bridge: str | None = None, mode: str = "nat",
               firewall: str | None = None) -> Network:
        """Validate, write the record (with the `.creating` marker), then -- with a
        `firewall` backend -- make the bridge and its rules; a failure rolls back."""
        check_name(name, "network name")
        if mode not in GATEWAY_MODES:
            raise UsageError(f"invalid gateway mode {mode!r} (choose from "
                             f"{', '.join(GATEWAY_MODES)})")
        if name in (DEFAULT_NETWORK, "default", "none", "host") or name.startswith("container"):
            raise UsageError(f"network name {name!r} is reserved")
        if gateway:
            try:
                gw_ip = ipaddress.IPv4Address(gateway)
            except ValueError:
                gw_ip = None  # parse_network() below says what is wrong with it
            for special, what in SPECIAL_RANGES:
                if gw_ip is not None and gw_ip in ipaddress.IPv4Network(special):
                    raise UsageError(f"gateway {gw_ip} is in the reserved range {special} "
                                     f"({what})")
        if gateway and not subnet:
            raise UsageError("--gateway needs --subnet")
        if bridge is not None and not IFNAME_RE.match(bridge):
            raise UsageError(f"invalid bridge name {bridge!r}: 1-15 characters of "
                             "[a-zA-Z0-9_.-]")
        if firewall is not None:
            from .firewall import get_firewall
            get_firewall(firewall, lock_path=self.paths.runroot / "firewall.lock",
                         owner=self.paths.owner_tag).check_available()
        with fsutil.locked(self.lock_path):
            if self.creating_path(name).exists():  # a `network create` killed midway
                if self.record_path(name).exists():
                    self._remove_locked(self.get(name))
                self.creating_path(name).unlink(missing_ok=True)
            if self.record_path(name).exists():
                raise Conflict(f"network {name!r} already exists")
            others = self.all()
            if subnet is not None:
                try:
                    net_ip = ipaddress.ip_network(subnet, strict=True)
                except ValueError as e:
                    raise UsageError(f"invalid subnet {subnet!r}: {e}") from None
                if net_ip.version != 4:
                    raise UsageError("IPv6 networks are not supported yet")
                subnet = str(net_ip)
                for special, what in SPECIAL_RANGES:
                    if subnet_overlaps(subnet, special):
                        raise UsageError(f"subnet {subnet} overlaps the reserved range "
                                         f"{special} ({what})")
                for other in others:
                    if subnet_overlaps(subnet, other.subnet):
                        raise Conflict(f"subnet {subnet} overlaps network {other.name!r} "
                                       f"({other.subnet})")
                ours = {n.subnet for n in others}
                for route in self._host_routes():
                    if route not in ours and subnet_overlaps(subnet, route):
                        raise Conflict(f"subnet {subnet} overlaps the host route {route}")
            else:
                in_use = RESERVED + self._host_routes() + [n.subnet for n in others]
                subnet = choose_free_subnet(CREATE_CANDIDATES, in_use)
                if subnet is None:
                    raise Conflict("no free subnet left: pass --subnet")
            if gateway is None:  # the first address (a /31 or /32 is refused just below)
                gateway = str(ipaddress.ip_network(subnet).network_address + 1)
            parse_network(subnet, gateway)  # gateway inside the subnet, not network/broadcast
            bridge = bridge or self._bridge_name(name)
            for other in others:
                if other.bridge == bridge:
                    raise Conflict(f"bridge {bridge} is already used by network {other.name!r}")
            if bridge == DEFAULT_BRIDGE:
                raise Conflict(f"bridge {bridge} belongs to the default network")
            if bridge in self._host_links():
                raise Conflict(f"a link named {bridge} already exists on the host")
            net = Network(name, subnet, gateway, bridge, created=time.time(), mode=mode)
            if firewall is None:
                fsutil.write_json(self.record_path(name), net._asdict())
                return net
            # record first, so that whatever a kill leaves is found and undone
            self.dir.mkdir(parents=True, exist_ok=True)
            fsutil.write_json(self.creating_path(name), {"firewall": firewall})
            fsutil.write_json(self.record_path(name), net._asdict())
            from .bridge import BridgeDriver
            try:
                BridgeDriver(self.paths, net, firewall).create_network()
            except BaseException:
                try:
                    self._remove_locked(net)
                except MinirunError:
                    pass  # the record and the marker stay: `network rm` finishes it
                raise
            self.creating_path(name).unlink(missing_ok=True)
            return net

    def remove(self, name: str) -> None:
        """Refused while containers are attached; removes the network's firewall rules and
        its bridge (only if it carries the network's MAC), then the record."""
        if name in (DEFAULT_NETWORK, "default"):
            raise UsageError(f"the default network {DEFAULT_NETWORK!r} cannot be removed")
        if not self.record_path(name).exists() and self.creating_path(name).exists():
            # killed before its record was written: nothing else of it exists
            with fsutil.locked(self.lock_path):
                self.creating_path(name).unlink(missing_ok=True)
            return
        net = self.get(name)
        with fsutil.locked(self.lock_path):
            users = self.containers_of(net)
            if users:
                raise Conflict(f"network {name!r} has containers attached: "
                               + ", ".join(c.name for c in users))
            self._remove_locked(net)

    def _remove_locked(self, net: Network) -> None:
        from .aardvark import forget_network
        from .bridge import BridgeDriver
        failures = forget_network(self.paths, net.name)  # names left by a crash
        failures += BridgeDriver(self.paths, net, "nftables").remove_network()
        if failures:
            raise MinirunError(f"network {net.name}: " + "; ".join(map(str, failures)))
        self.record_path(net.name).unlink(missing_ok=True)
        import shutil
        shutil.rmtree(self.dir / net.name, ignore_errors=True)
        self.creating_path(net.name).unlink(missing_ok=True)

    def containers_of(self, net: Network) -> list:
        return [c for c in all_containers(self.paths)
                if ((c.network is not None and c.network.network == net.name)
                    or any(a.network == net.name for a in c.networks))
                and not (c.state == "stopped" and c.torn_down)]

    @staticmethod
    def _bridge_name(name: str) -> str:
        cand = f"mr-{name}"
        if len(cand) <= 15:
            return cand
        return "mr-" + sha256_hex(name)[:12]

    @staticmethod
    def _host_routes() -> list[str]:
        from .netlink import Netlink
        nl = Netlink()
        try:
            return nl.routes()
        finally:
            nl.close()

    @staticmethod
    def _host_links() -> set[str]:
        try:
            return set(p.name for p in Path("/sys/class/net").iterdir())
        except OSError:
            return set()
