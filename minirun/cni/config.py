"""The network configuration of `minirun-cni`, as a runtime hands it over on stdin.

One plugin entry of a conflist, with the conflist's `name` and `cniVersion` added by
the runtime (CNI spec, "Network configuration"):

    {"cniVersion": "1.0.0", "name": "mynet", "type": "minirun-cni",
     "bridge": "mr-mynet",           # optional: default "mr-" + the first 12 of name
     "subnet": "10.77.0.0/24",       # required (IPv4)
     "gateway": "10.77.0.1",         # optional: the subnet's first address
     "mode": "nat",                  # nat | routed | nat-unprotected (minirun's gateway modes)
     "firewall": "nftables",         # nftables | iptables
     "dataDir": "/var/lib/minirun-cni",  # the plugin's own state root (records, leases)
     "runDir": "/run/minirun-cni",       # its volatile state (locks, markers)
     "dns": {...},                   # copied into the result as is
     "capabilities": {"portMappings": true},
     "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80,
                                         "protocol": "tcp", "hostIP": ""}]}}

Errors raise CniError with the spec's codes (4: invalid network configuration).
"""
from __future__ import annotations

import ipaddress
import re
from ..tuples import NamedTuple

SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
MODES = ("nat", "routed", "nat-unprotected")
FIREWALLS = ("nftables", "iptables")
IFNAME_RE = re.compile(r"^[a-zA-Z0-9_.-]{1,15}$")
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
DEFAULT_DATA_DIR = "/var/lib/minirun-cni"
DEFAULT_RUN_DIR = "/run/minirun-cni"

# the spec's well-known error codes
E_INCOMPATIBLE_VERSION = 1
E_UNSUPPORTED_FIELD = 2
E_UNKNOWN_CONTAINER = 3
E_INVALID_CONFIG = 4
E_IO = 5
E_DECODE = 6
E_INVALID_ENV = 7
E_TRY_AGAIN = 11
E_NOT_AVAILABLE = 50
E_PLUGIN = 100          # plugin-specific: minirun refused or failed
E_CONFLICT = 101        # plugin-specific: something in the way (a host port in use, a link
                        # of that name that is not minirun's)
E_CHECK_FAILED = 102    # plugin-specific: CHECK found the attachment broken


class CniError(Exception):
    def __init__(self, code: int, msg: str, details: str = ""):
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details

    def to_json(self, version: str) -> dict:
        d = {"cniVersion": version, "code": self.code, "msg": self.msg}
        if self.details:
            d["details"] = self.details
        return d


class PortMapping(NamedTuple):
    host_port: int
    container_port: int
    protocol: str
    host_ip: str | None


class NetConf(NamedTuple):
    cni_version: str
    name: str
    bridge: str
    subnet: str
    gateway: str
    mode: str
    firewall: str
    data_dir: str
    run_dir: str
    dns: dict
    port_mappings: tuple[PortMapping, ...]
    valid_attachments: tuple[tuple[str, str], ...] | None  # GC: (containerID, ifname)


def _bad(msg: str) -> CniError:
    return CniError(E_INVALID_CONFIG, msg)


def _str(d: dict, key: str, default: str | None = None) -> str | None:
    v = d.get(key, default)
    if v is not None and not isinstance(v, str):
        raise _bad(f"{key} must be a string")
    return v


def parse_port_mappings(raw) -> tuple[PortMapping, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _bad("runtimeConfig.portMappings must be a list")
    out = []
    for m in raw:
        if not isinstance(m, dict):
            raise _bad("a port mapping must be an object")
        try:
            hp, cp = int(m["hostPort"]), int(m["containerPort"])
        except (KeyError, TypeError, ValueError):
            raise _bad(f"port mapping {m!r} needs integer hostPort and containerPort") from None
        if not (0 < hp < 65536 and 0 < cp < 65536):
            raise _bad(f"port mapping {m!r}: ports must be 1-65535")
        proto = str(m.get("protocol") or "tcp").lower()
        if proto not in ("tcp", "udp"):
            raise _bad(f"port mapping {m!r}: protocol must be tcp or udp")
        hip = m.get("hostIP") or None
        if hip is not None:
            try:
                addr = ipaddress.ip_address(hip)
            except ValueError:
                raise _bad(f"port mapping {m!r}: invalid hostIP") from None
            if addr.version != 4:
                raise _bad(f"port mapping {m!r}: IPv6 host addresses are not supported")
            hip = None if addr.is_unspecified else str(addr)
        out.append(PortMapping(hp, cp, proto, hip))
    return tuple(out)


def parse(conf: dict) -> NetConf:
    """Validate one plugin configuration (with name and cniVersion); CniError(4) if bad."""
    if not isinstance(conf, dict):
        raise CniError(E_DECODE, "the network configuration must be a JSON object")
    version = _str(conf, "cniVersion")
    if not version:
        raise _bad("cniVersion is missing")
    if version not in SUPPORTED_VERSIONS:
        raise CniError(E_INCOMPATIBLE_VERSION, f"unsupported cniVersion {version!r}",
                       "supported: " + ", ".join(SUPPORTED_VERSIONS))
    name = _str(conf, "name")
    if not name or not NAME_RE.match(name) or len(name) > 64:
        raise _bad(f"invalid network name {name!r}")
    bridge = _str(conf, "bridge") or ("mr-" + name[:12])
    if not IFNAME_RE.match(bridge):
        raise _bad(f"invalid bridge name {bridge!r}: 1-15 characters of [a-zA-Z0-9_.-]")
    subnet = _str(conf, "subnet")
    if not subnet:
        raise _bad("subnet is missing")
    try:
        net = ipaddress.ip_network(subnet, strict=True)
    except ValueError as e:
        raise _bad(f"invalid subnet {subnet!r}: {e}") from None
    if net.version != 4:
        raise _bad("only IPv4 subnets are supported")
    if net.prefixlen > 30:
        raise _bad(f"subnet {subnet} is too small")
    gateway = _str(conf, "gateway") or str(next(net.hosts()))
    try:
        gw = ipaddress.IPv4Address(gateway)
    except ValueError:
        raise _bad(f"invalid gateway {gateway!r}") from None
    if gw not in net or gw in (net.network_address, net.broadcast_address):
        raise _bad(f"gateway {gateway} is not a host address of {subnet}")
    mode = _str(conf, "mode", "nat")
    if mode not in MODES:
        raise _bad(f"invalid mode {mode!r} (choose from {', '.join(MODES)})")
    firewall = _str(conf, "firewall", "nftables")
    if firewall not in FIREWALLS:
        raise _bad(f"invalid firewall {firewall!r} (choose from {', '.join(FIREWALLS)})")
    data_dir = _str(conf, "dataDir", DEFAULT_DATA_DIR)
    run_dir = _str(conf, "runDir", DEFAULT_RUN_DIR)
    for key, d in (("dataDir", data_dir), ("runDir", run_dir)):
        if not d.startswith("/"):
            raise _bad(f"{key} must be an absolute path")
    dns = conf.get("dns") or {}
    if not isinstance(dns, dict):
        raise _bad("dns must be an object")
    rc = conf.get("runtimeConfig") or {}
    if not isinstance(rc, dict):
        raise _bad("runtimeConfig must be an object")
    valid = conf.get("cni.dev/valid-attachments")
    if valid is not None:
        if not isinstance(valid, list):
            raise _bad("cni.dev/valid-attachments must be a list")
        try:
            valid = tuple((str(a["containerID"]), str(a["ifname"])) for a in valid)
        except (KeyError, TypeError):
            raise _bad("cni.dev/valid-attachments: each needs containerID and ifname") from None
    return NetConf(version, name, bridge, str(net), str(gw), mode, firewall,
                   data_dir, run_dir, dns, parse_port_mappings(rc.get("portMappings")), valid)
