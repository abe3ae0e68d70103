"""Networks as objects: `minirun network create/ls/inspect/rm/prune` and the default network.

A network is a record (name, subnet, gateway, bridge name). Its kernel objects
-- the bridge and the network-wide firewall rules -- exist only while at least
one container is attached (made by the first attach, removed by the last
detach), so an idle host carries nothing of minirun's.
"""
from __future__ import annotations

import hashlib
import ipaddress
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import fsutil
from ..errors import Conflict, NotFound, UsageError
from ..spec import check_name
from ..state import Paths, all_containers
from .ipam import Ipam, choose_free_subnet, parse_network, subnet_overlaps

DEFAULT_NETWORK = "bridge"
DEFAULT_BRIDGE = "minirun0"
# Never overlap Docker's and podman's defaults, whatever the host's routes say.
RESERVED = ["172.17.0.0/16", "10.88.0.0/16"]
DEFAULT_CANDIDATES = [f"10.99.{i}.0/24" for i in range(256)]
IFNAME_RE = re.compile(r"^[a-zA-Z0-9_.-]{1,15}$")
# Ranges no bridge network may touch (RFC 6890): a subnet there would capture the host's
# own loopback, link-local (cloud metadata), multicast or broadcast traffic.
SPECIAL_RANGES = (("0.0.0.0/8", "this network"), ("127.0.0.0/8", "loopback"),
                  ("169.254.0.0/16", "link-local"), ("224.0.0.0/4", "multicast"),
                  ("240.0.0.0/4", "class E and broadcast"))


@dataclass(frozen=True)
class Network:
    name: str
    subnet: str
    gateway: str
    bridge: str
    driver: str = "bridge"
    created: float = 0.0

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen


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

    def all(self) -> list[Network]:
        out = []
        if self.dir.exists():
            for p in sorted(self.dir.glob("*.json")):
                data = fsutil.read_json(p)
                if data:
                    out.append(Network(**data))
        return out

    def get(self, name: str) -> Network:
        if name in (DEFAULT_NETWORK, "default"):
            return self.default()
        data = fsutil.read_json(self.record_path(name))
        if data is None:
            raise NotFound(f"no such network: {name}")
        return Network(**data)

    def default(self) -> Network:
        data = fsutil.read_json(self.record_path(DEFAULT_NETWORK))
        if data is not None:
            return Network(**data)
        with fsutil.locked(self.lock_path):
            data = fsutil.read_json(self.record_path(DEFAULT_NETWORK))
            if data is not None:
                return Network(**data)
            in_use = RESERVED + self._host_routes() + [n.subnet for n in self.all()]
            subnet = choose_free_subnet(DEFAULT_CANDIDATES, in_use)
            if subnet is None:
                raise Conflict("no free subnet for the default network in 10.99.0.0/16: "
                               "create one with `minirun network create --subnet ...`")
            gw = str(next(ipaddress.ip_network(subnet).hosts()))
            net = Network(DEFAULT_NETWORK, subnet, gw, DEFAULT_BRIDGE, created=time.time())
            fsutil.write_json(self.record_path(net.name), asdict(net))
            return net

    def create(self, name: str, subnet: str | None = None, gateway: str | None = None,
               bridge: str | None = None) -> Network:
        check_name(name, "network name")
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
        with fsutil.locked(self.lock_path):
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
                cands = [f"10.{i}.{j}.0/24" for i in range(100, 110) for j in range(256)]
                subnet = choose_free_subnet(cands, in_use)
                if subnet is None:
                    raise Conflict("no free subnet left: pass --subnet")
            if gateway is None:
                gateway = str(next(ipaddress.ip_network(subnet).hosts()))
            parse_network(subnet, gateway)  # gateway inside the subnet, not network/broadcast
            bridge = bridge or self._bridge_name(name)
            for other in others:
                if other.bridge == bridge:
                    raise Conflict(f"bridge {bridge} is already used by network {other.name!r}")
            if bridge == DEFAULT_BRIDGE:
                raise Conflict(f"bridge {bridge} belongs to the default network")
            if bridge in self._host_links():
                raise Conflict(f"a link named {bridge} already exists on the host")
            net = Network(name, subnet, gateway, bridge, created=time.time())
            fsutil.write_json(self.record_path(name), asdict(net))
            return net

    def remove(self, name: str) -> None:
        net = self.get(name)
        with fsutil.locked(self.lock_path):
            users = self.containers_of(net)
            if users:
                raise Conflict(f"network {name!r} has containers attached: "
                               + ", ".join(c.name for c in users))
            self.record_path(net.name).unlink(missing_ok=True)
            import shutil
            shutil.rmtree(self.dir / net.name, ignore_errors=True)

    def containers_of(self, net: Network) -> list:
        return [c for c in all_containers(self.paths)
                if c.network is not None and c.network.network == net.name
                and not (c.state == "stopped" and c.torn_down)]

    @staticmethod
    def _bridge_name(name: str) -> str:
        cand = f"mr-{name}"
        if len(cand) <= 15:
            return cand
        return "mr-" + hashlib.sha256(name.encode()).hexdigest()[:12]

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
