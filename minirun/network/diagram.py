"""`minirun network diagram`: the network topology, drawn from LIVE kernel state.

What the kernel says, not what minirun's records say, so that a learner's
hand-made veth or bridge shows up beside minirun's: links, addresses and routes
of the host and of every named network namespace (`ip -j -d link/addr/route`,
`ip -n NAME ...`), each veth pair joined end to end (the peer's ifindex and
link-netnsid; netns ids mapped to names with `ip netns list-id`, and ends inside
namespaces paired by their mutual ifindexes), the published ports and each
bridge's NAT or routed mode (read from minirun's nftables table or iptables
chains). minirun's records only add labels: which network a bridge is, which
container a namespace is.

Output: an indented tree for the terminal (default), or Graphviz: `dot` text,
or an SVG/PNG picture made by the `dot` tool (`apt-get install graphviz`).
"""
from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from dataclasses import dataclass, field

from ..errors import MinirunError, UsageError

HOST = ""  # the key of the host's own namespace
FORMATS = ("text", "dot", "svg", "png")


# -- reading the kernel --------------------------------------------------------

def ip_json(*args: str, netns: str | None = None) -> list:
    """`ip [-n NETNS] -j ARGS...` parsed; [] when it fails (a namespace gone meanwhile)."""
    argv = ["ip"] + (["-n", netns] if netns else []) + ["-j", *args]
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if res.returncode != 0 or not res.stdout.strip():
        return []
    try:
        return json.loads(res.stdout)
    except ValueError:
        return []


@dataclass
class Link:
    ns: str                  # HOST or a netns name
    index: int
    name: str
    kind: str                # bridge, veth, loopback, ether, ...
    mac: str
    up: bool
    addrs: list[str] = field(default_factory=list)
    master: str | None = None
    alias: str | None = None
    peer_index: int | None = None
    peer_nsid: int | None = None  # None: the peer is in the same namespace
    peer: tuple[str, str] | None = None  # resolved: (namespace, ifname)


@dataclass
class Namespace:
    name: str                # HOST or the netns name
    links: list[Link] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)
    nsids: dict[int, str] = field(default_factory=dict)  # nsid -> netns name, as seen here


@dataclass
class Published:
    proto: str
    host_ip: str | None
    host_port: int
    container_ip: str
    container_port: int

    def __str__(self) -> str:
        return (f"{self.host_ip or '0.0.0.0'}:{self.host_port} -> "
                f"{self.container_ip}:{self.container_port}/{self.proto}")


@dataclass
class Topology:
    namespaces: dict[str, Namespace]
    published: list[Published]
    modes: dict[str, str]          # bridge -> "nat" | "routed" | "nat-unprotected"
    networks: dict[str, str]       # bridge -> minirun network name
    containers: dict[str, str]     # netns name -> container name
    firewall: str | None           # which backend's rules were read


def _route_text(r: dict) -> str:
    out = r.get("dst", "?")
    if r.get("gateway"):
        out += f" via {r['gateway']}"
    if r.get("dev"):
        out += f" dev {r['dev']}"
    if r.get("prefsrc"):
        out += f" src {r['prefsrc']}"
    return out


def _namespace(name: str) -> Namespace:
    netns = name or None
    ns = Namespace(name)
    addrs = {a["ifname"]: [f"{i['local']}/{i['prefixlen']}" for i in a.get("addr_info", [])
                           if i.get("family") == "inet"]
             for a in ip_json("addr", "show", netns=netns)}
    for raw in ip_json("-d", "link", "show", netns=netns):
        info = raw.get("linkinfo", {})
        kind = info.get("info_kind") or raw.get("link_type", "")
        ns.links.append(Link(
            ns=name, index=raw["ifindex"], name=raw["ifname"], kind=kind,
            mac=raw.get("address", ""), up="UP" in raw.get("flags", []),
            addrs=addrs.get(raw["ifname"], []), master=raw.get("master"),
            alias=raw.get("ifalias"),
            peer_index=raw.get("link_index") if kind == "veth" else None,
            peer_nsid=raw.get("link_netnsid") if kind == "veth" else None))
    ns.routes = [_route_text(r) for r in ip_json("route", "show", netns=netns)]
    for entry in ip_json("netns", "list-id", netns=netns):
        if "name" in entry:
            ns.nsids[entry["nsid"]] = entry["name"]
    return ns


def _pair_veths(namespaces: dict[str, Namespace]) -> None:
    """Join each veth to its other end: by the netns id's name where this namespace knows
    it, else by the mutual ifindexes (end A names B's ifindex and B names A's)."""
    ends = [l for ns in namespaces.values() for l in ns.links if l.kind == "veth"]
    for l in ends:
        if l.peer_index is None:
            continue
        if l.peer_nsid is None:
            cands = [p for p in ends if p.ns == l.ns and p.index == l.peer_index]
        else:
            named = namespaces[l.ns].nsids.get(l.peer_nsid)
            cands = [p for p in ends if p.index == l.peer_index and p.ns != l.ns
                     and (named is None or p.ns == named)]
            if len(cands) > 1:
                cands = [p for p in cands if p.peer_index == l.index] or cands
        if len(cands) == 1:
            l.peer = (cands[0].ns, cands[0].name)
        elif l.peer_nsid is not None:
            l.peer = (f"netns id {l.peer_nsid} (no name in /run/netns)", f"ifindex {l.peer_index}")


def _firewall_view() -> tuple[list[Published], dict[str, str], str | None]:
    """Published ports and bridge modes from minirun's rules: nftables table, else the
    iptables chains."""
    from .firewall import nftables as nft
    from .firewall.base import SystemRunner
    try:
        listing = SystemRunner().nft(f"list table {nft.TABLE}", json=True)
        state = nft.parse_state(listing)
    except Exception:  # noqa: BLE001 - no table, no nft: nothing to show from it
        state = None
    if state is not None and state.exists:
        pub = []
        for m in nft.PORT_MAPS:
            proto = m.rsplit("_", 1)[1]
            for e in state.elements.get(m, []):
                key = [p.strip() for p in e.key.split(" . ")]
                val = [p.strip() for p in (e.value or "").split(" . ")]
                if len(val) != 2:
                    continue
                host_ip, port = (key[0], key[1]) if len(key) == 2 else (None, key[0])
                pub.append(Published(proto, host_ip, int(port), val[0], int(val[1])))
        modes = {}
        for e in state.elements.get("bridges", []):
            b = e.key.strip('"')
            modes[b] = "nat"
        routed = {e.comment for e in state.elements.get("routed_subnets", [])}
        for e in state.elements.get("bridges", []):
            if e.comment in routed:
                modes[e.key.strip('"')] = "routed"
        for e in state.elements.get("open_bridges", []):
            modes[e.key.strip('"')] = "nat-unprotected"
        return pub, modes, "nftables"
    if shutil.which("iptables-save"):
        from .firewall import iptables as ipt
        try:
            saved = subprocess.run(["iptables-save"], capture_output=True, text=True,
                                   timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            saved = ""
        tables = ipt.parse_save(saved)
        if "MINIRUN-DNAT" in tables.get("nat", ipt.Table()).chains:
            return _iptables_view(tables)
    return [], {}, None


def _iptables_view(tables) -> tuple[list[Published], dict[str, str], str]:
    import re
    pub = []
    dnat = re.compile(r"-A MINIRUN-DNAT (?:-d (\S+)/32 )?-p (\w+) .*--dport (\d+) .*"
                      r"--to-destination ([\d.]+):(\d+)")
    nat = tables.get("nat")
    filt = tables.get("filter")
    for r in nat.rules if nat else []:
        m = dnat.match(r)
        if m:
            pub.append(Published(m.group(2), m.group(1), int(m.group(3)), m.group(4),
                                 int(m.group(5))))
    modes = {}
    for r in filt.rules if filt else []:
        m = re.match(r"-A MINIRUN-INGRESS -o (\S+) .*-j DROP$", r)
        if m:
            modes.setdefault(m.group(1), "routed")
    for r in nat.rules if nat else []:
        m = re.match(r"-A MINIRUN-POSTROUTING -s \S+ ! -o (\S+) .*-j MASQUERADE$", r)
        if m and m.group(1) in modes:
            modes[m.group(1)] = "nat"
    for r in filt.rules if filt else []:
        m = re.match(r"-A MINIRUN-INGRESS -o (\S+) -m comment --comment \S+ -j ACCEPT$", r)
        if m:
            modes[m.group(1)] = "nat-unprotected"
    return pub, modes, "iptables"


def _labels(paths) -> tuple[dict[str, str], dict[str, str]]:
    """From minirun's records: bridge -> network name, netns name -> container name."""
    networks, containers = {}, {}
    if paths is None:
        return networks, containers
    try:
        from ..state import all_containers
        from .networks import NetworkStore
        for n in NetworkStore(paths).all():
            networks[n.bridge] = n.name
        for c in all_containers(paths):
            if c.network is not None and c.network.netns:
                containers[c.network.netns] = c.name
    except (MinirunError, OSError, ValueError):
        pass
    return networks, containers


def read_topology(paths=None) -> Topology:
    names = sorted(e["name"] for e in ip_json("netns", "list") if "name" in e)
    namespaces = {HOST: _namespace(HOST)}
    for n in names:
        namespaces[n] = _namespace(n)
    _pair_veths(namespaces)
    pub, modes, fw = _firewall_view()
    networks, containers = _labels(paths)
    return Topology(namespaces, pub, modes, networks, containers, fw)


def restrict(topo: Topology, network: str, bridge: str, subnet: str) -> Topology:
    """Only one network: its bridge and ports, the namespaces plugged into it, its ports."""
    host = topo.namespaces[HOST]
    ports = [l for l in host.links if l.master == bridge]
    keep = {HOST} | {l.peer[0] for l in ports if l.peer}
    namespaces = {}
    for name, ns in topo.namespaces.items():
        if name not in keep:
            continue
        if name == HOST:
            ns = Namespace(HOST, [l for l in ns.links if l.name == bridge or l.master == bridge],
                           [r for r in ns.routes if f"dev {bridge}" in r], ns.nsids)
        namespaces[name] = ns
    net = ipaddress.ip_network(subnet)
    pub = [p for p in topo.published if ipaddress.ip_address(p.container_ip) in net]
    return Topology(namespaces, pub, {k: v for k, v in topo.modes.items() if k == bridge},
                    topo.networks, topo.containers, topo.firewall)


# -- drawing -------------------------------------------------------------------

MODE_TEXT = {
    "nat": "NAT: egress masqueraded to the host's address; from outside only published "
           "host ports",
    "routed": "routed: no NAT; other hosts with a route to the subnet reach the published "
              "container ports at the containers' own addresses",
    "nat-unprotected": "NAT on the way out; other hosts with a route reach every port",
}


def _ns_title(topo: Topology, name: str) -> str:
    if name == HOST:
        return "host (minirun's own network namespace)"
    c = topo.containers.get(name)
    return f"netns {name}" + (f"  (container {c})" if c else "")


def _link_line(topo: Topology, l: Link) -> str:
    parts = [l.name, l.kind or "link"]
    parts += l.addrs
    if l.kind in ("bridge", "veth", "ether") and l.mac:
        parts.append(f"mac {l.mac}")
    parts.append("UP" if l.up else "DOWN")
    if l.peer:
        ns, ifname = l.peer
        where = "on the host" if ns == HOST else f"in netns {ns}"
        parts.append(f"== cable to {ifname} {where}")
    if l.kind == "bridge":
        net = topo.networks.get(l.name)
        mode = topo.modes.get(l.name)
        if net or mode:
            parts.append(f"[minirun network {net or '?'}, {mode or 'no rules'}]")
    return "  ".join(parts)


def render_text(topo: Topology) -> str:
    out = []
    for name, ns in topo.namespaces.items():
        out.append(_ns_title(topo, name))
        out.append("  interfaces:")
        ports = {}
        for l in ns.links:
            if l.master:
                ports.setdefault(l.master, []).append(l)
        for l in ns.links:
            if l.master and any(b.name == l.master for b in ns.links):
                continue  # drawn under its bridge
            out.append(f"    {_link_line(topo, l)}")
            kids = ports.get(l.name, [])
            for i, p in enumerate(kids):
                branch = "`--" if i == len(kids) - 1 else "|--"
                out.append(f"      {branch} {_link_line(topo, p)}")
        out.append("  routes:")
        out += [f"    {r}" for r in ns.routes] or ["    (none)"]
        if name == HOST:
            modes = [(b, m) for b, m in sorted(topo.modes.items())
                     if any(l.name == b for l in ns.links)]
            if modes:
                out.append("  bridge modes:")
                out += [f"    {b}: {MODE_TEXT[m]}" for b, m in modes]
            if topo.published:
                out.append(f"  published ports ({topo.firewall}):")
                for p in topo.published:
                    who = _owner_of(topo, p.container_ip)
                    out.append(f"    {p}" + (f"   ({who})" if who else ""))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _owner_of(topo: Topology, ip: str) -> str | None:
    for name, ns in topo.namespaces.items():
        for l in ns.links:
            if any(a.split("/")[0] == ip for a in l.addrs):
                if name == HOST:
                    return f"host {l.name}"
                c = topo.containers.get(name)
                return f"container {c}" if c else f"netns {name}"
    return None


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _node(ns: str, ifname: str) -> str:
    return _q(f"{ns or 'host'}/{ifname}")


def render_dot(topo: Topology) -> str:
    lines = ["graph minirun {", "  rankdir=LR;", "  compound=true;",
             '  node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica", '
             'fontsize=10];', '  edge [fontname="Helvetica", fontsize=9];']
    edges = []
    for i, (name, ns) in enumerate(topo.namespaces.items()):
        lines.append(f"  subgraph cluster_{i} {{")
        lines.append(f"    label={_q(_ns_title(topo, name))};")
        lines.append(f'    style=filled; fillcolor="{"#eef3fb" if name == HOST else "#f4f9ee"}";')
        for l in ns.links:
            label = [l.name, l.kind or "link", *l.addrs]
            if l.kind in ("bridge", "veth") and l.mac:
                label.append(l.mac)
            if l.kind == "bridge" and l.name in topo.modes:
                label.append(f"mode: {topo.modes[l.name]}")
                if l.name in topo.networks:
                    label.append(f"network {topo.networks[l.name]}")
            color = {"bridge": "#ffe9a8", "veth": "#d7ecff"}.get(l.kind, "white")
            shape = "box3d" if l.kind == "bridge" else "box"
            lines.append(f"    {_node(name, l.name)} [label={_q(chr(10).join(label))}, "
                         f"fillcolor=\"{color}\", shape={shape}];")
            if l.master:
                edges.append(f"  {_node(name, l.master)} -- {_node(name, l.name)} "
                             f"[style=dashed, label=\"port\"];")
            if l.peer and l.peer[0] in topo.namespaces:
                a, b = (name, l.name), l.peer
                if a < b:  # each cable once
                    edges.append(f"  {_node(*a)} -- {_node(*b)} [penwidth=2, label=\"veth\"];")
        if ns.routes:
            text = "routes\n" + "\n".join(ns.routes)
            lines.append(f"    {_node(name, '(routes)')} [shape=note, fillcolor=\"#fafafa\", "
                         f"label={_q(text)}];")
        if name == HOST and topo.published:
            text = "published ports\n" + "\n".join(map(str, topo.published))
            lines.append(f"    \"host/published\" [shape=note, fillcolor=\"#fff4f4\", "
                         f"label={_q(text)}];")
        lines.append("  }")
    lines += edges
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(topo: Topology, fmt: str) -> bytes:
    if fmt == "text":
        return render_text(topo).encode()
    dot = render_dot(topo)
    if fmt == "dot":
        return dot.encode()
    exe = shutil.which("dot")
    if exe is None:
        raise UsageError(f"--format {fmt} needs Graphviz's `dot`: apt-get install graphviz "
                         "(or use --format dot / text)")
    res = subprocess.run([exe, f"-T{fmt}"], input=dot.encode(), capture_output=True,
                         timeout=60)
    if res.returncode != 0:
        raise MinirunError(f"dot -T{fmt}: {res.stderr.decode(errors='replace').strip()}")
    return res.stdout
