"""The nftables backend (the default): one table, `ip minirun`, of minirun's own.

The ruleset is constant; networks and containers only add and remove ELEMENTS
of sets and maps, each element tagged with a comment "<owner>:<network name>" or
"<owner>:<container id>", <owner> being the state root's tag: several state roots
share the table, and each lists, tears down and purges only its own elements. So starting a container is one `create element` transaction
whose cost does not grow with the number of containers, and every change is
atomic (one `nft -f` batch, applied in-process through libnftables).

    table ip minirun
      set bridges       { type ifname }                     "minirun0"              comment <owner>:<network>
      set bridge_pairs  { type ifname . ifname }            "minirun0" . "minirun0" comment <owner>:<network>
      set subnets       { type ipv4_addr; flags interval }  10.88.5.0/24            comment <owner>:<network>
                        (a NAT network's subnet; a routed network's goes to routed_subnets)
      set open_bridges  { type ifname }  bridges of `nat-unprotected` networks   comment <owner>:<network>
      set routed_tcp    { type ipv4_addr . inet_service }   10.88.5.2 . 80     comment <owner>:<container id>
                        a routed network's published container ports (routed_udp alike)
      map ports_tcp     { inet_service : ipv4_addr . inet_service }       published on every address
      map hostports_tcp { ipv4_addr . inet_service : ipv4_addr . inet_service }  on one host address
      (ports_udp, hostports_udp alike)                      comment <owner>:<container id>

      raw_prerouting  (prerouting, raw)  drop 127.0.0.0/8 arriving on anything but lo. The
                      bridge driver sets route_localnet=1 on the bridges, so without this a
                      container (or a LAN host) could reach the host's 127.0.0.1 services and
                      ports published on 127.0.0.1 (CVE-2020-8558).
      prerouting, output (nat, dstnat)  `fib daddr type local` -> publish: DNAT through the
                      maps, host-address entries first; output covers the host itself,
                      127.0.0.1 included.
      postrouting (nat, srcnat)  masquerade: the subnets leaving through anything but a minirun
                      bridge (egress); 127.0.0.0/8 sources leaving on a bridge (localhost
                      publishing); DNATed traffic from a subnet going back out a bridge (hairpin).
      forward (filter)  `jump user` first, then into a bridge only: replies (established,
                      related), published ports (ct status dnat), on routed networks new
                      connections to published container ports at the container's address
                      (@routed_tcp/udp), on nat-unprotected networks anything not coming from
                      another minirun bridge (@open_bridges), and traffic from the same
                      bridge. So networks are isolated from each other and the LAN cannot reach
                      unpublished container ports by routing to the subnet.
      user            the ADMIN HOOK (below).

Idempotent and race-safe setup: every setup_network is ONE transaction that
`add`s the table, sets, maps and chains (no error when present), FLUSHES minirun's
base chains (never `user`) and re-adds their constant rules, then adds the
network's elements. The kernel serialises transactions, so any number of
concurrent setups leave exactly one copy of each rule. Teardown and the
decision to delete the table (no element of any owner left but this owner's
ports, and `user` empty) are taken under an flock (`lock_path`), as is
reading-then-deleting elements.

Flushed firewalls: `nft flush ruleset` takes everything, `nft flush table ip
minirun` the rules (sets and maps stay). `intact(nets)` sees either in one terse
listing of the ruleset (no set elements: ~0.5 ms however big the port maps) plus
one listing of the small `bridges` set; `restore(net, containers)` is the setup
transaction again plus the containers' port elements that are missing (those
present and ours are fine; another owner's are a Conflict). Callers must turn
`route_localnet` on for a bridge only after setup_network/restore returned: the
127.0.0.0/8 drop is part of the base they (re)create.

Admin hook: chain `user` in table `ip minirun` is jumped to first from minirun's
forward chain, for every forwarded packet. minirun never flushes it, and never
deletes the table while it has rules. A `drop` there is final; an `accept` only
ends minirun's own chain (it skips minirun's isolation, nothing else). Match a
published port by its container-side address, or by `ct original proto-dst`:
    nft add rule ip minirun user iifname "eth0" ct original proto-dst 8080 drop

FORWARD policy drop: in nftables an accept in one base chain does not override a
drop in another, so minirun's own chain cannot help when iptables' `filter FORWARD`
drops (Docker sets that policy). When `table ip filter` has a FORWARD chain
(whatever its policy: it may turn to drop later), setup_network adds, THROUGH
iptables-restore (so iptables keeps understanding its table), one jump
`-I FORWARD 1 -j MINIRUN-FORWARD` and a chain MINIRUN-FORWARD that accepts, per
network, replies and DNATed traffic into the bridge and everything leaving it;
minirun's nft forward chain still does the dropping. Tagged
`minirun:<owner>:net:<name>`; the chain and jump go with the last network.

iptables-legacy hosts (Docker's rules in the legacy tables, FORWARD policy DROP):
setup_network reads /proc/net/ip_tables_names (per network namespace) and, when
it lists `filter` and `iptables-legacy-save -t filter` shows a DROP policy or
FORWARD rules, adds the same jump and chain with `iptables-legacy-restore
--noflush`; teardown removes them. Without the legacy tools there, setup fails
with a one-line error saying what to install.

A drop policy in an nftables-only forward chain (an `inet filter` table, or an
nft-made `ip filter FORWARD` when the iptables tools are absent) gets minirun's
accepts inserted at its top, see `foreign`.
"""
from __future__ import annotations

import json
import re
from ...tuples import NamedTuple
from pathlib import Path

from minirun.errors import Conflict, MinirunError, UsageError
from minirun.fsutil import locked
from minirun.network.firewall import foreign
from minirun.network.firewall import iptables as _ipt
from minirun.network.firewall.base import (DEFAULT_OWNER, PROTOCOLS, CommandFailed, NetworkInfo,
                                           PortForward, Runner, apply_nft, check_name,
                                           check_owner, default_lock_path, fail, published_by,
                                           routed_forwards, split_tag, why_of)

TABLE = "ip minirun"
NET_SETS = ("bridges", "bridge_pairs", "subnets", "routed_subnets", "open_bridges")
PORT_MAPS = tuple(f"{kind}_{proto}" for proto in PROTOCOLS for kind in ("hostports", "ports"))
ROUTED_SETS = tuple(f"routed_{proto}" for proto in PROTOCOLS)
CONTAINER_SETS = PORT_MAPS + ROUTED_SETS  # elements tagged with a container id
BASE_CHAINS = ("raw_prerouting", "prerouting", "output", "postrouting", "forward", "publish")
HOOKS = {"raw_prerouting": "prerouting", "prerouting": "prerouting", "output": "output",
         "postrouting": "postrouting", "forward": "forward"}

_DECLARATIONS = f"""\
add table {TABLE}
add set {TABLE} bridges {{ type ifname; }}
add set {TABLE} bridge_pairs {{ type ifname . ifname; }}
add set {TABLE} subnets {{ type ipv4_addr; flags interval; }}
add set {TABLE} routed_subnets {{ type ipv4_addr; flags interval; }}
add set {TABLE} open_bridges {{ type ifname; }}
add set {TABLE} routed_tcp {{ type ipv4_addr . inet_service; }}
add set {TABLE} routed_udp {{ type ipv4_addr . inet_service; }}
add map {TABLE} hostports_tcp {{ type ipv4_addr . inet_service : ipv4_addr . inet_service; }}
add map {TABLE} ports_tcp {{ type inet_service : ipv4_addr . inet_service; }}
add map {TABLE} hostports_udp {{ type ipv4_addr . inet_service : ipv4_addr . inet_service; }}
add map {TABLE} ports_udp {{ type inet_service : ipv4_addr . inet_service; }}
add chain {TABLE} raw_prerouting {{ type filter hook prerouting priority raw; policy accept; }}
add chain {TABLE} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}
add chain {TABLE} output {{ type nat hook output priority -100; policy accept; }}
add chain {TABLE} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}
add chain {TABLE} forward {{ type filter hook forward priority filter; policy accept; }}
add chain {TABLE} publish
add chain {TABLE} user
"""

_RULES = f"""\
add rule {TABLE} raw_prerouting iifname != "lo" ip daddr 127.0.0.0/8 drop
add rule {TABLE} prerouting fib daddr type local jump publish
add rule {TABLE} output fib daddr type local jump publish
add rule {TABLE} publish dnat to ip daddr . tcp dport map @hostports_tcp
add rule {TABLE} publish dnat to tcp dport map @ports_tcp
add rule {TABLE} publish dnat to ip daddr . udp dport map @hostports_udp
add rule {TABLE} publish dnat to udp dport map @ports_udp
add rule {TABLE} postrouting ip saddr @subnets oifname != @bridges masquerade
add rule {TABLE} postrouting ip saddr 127.0.0.0/8 oifname @bridges masquerade
add rule {TABLE} postrouting ct status dnat ip saddr @subnets oifname @bridges masquerade
add rule {TABLE} postrouting ct status dnat ip saddr @routed_subnets oifname @bridges masquerade
add rule {TABLE} forward jump user
add rule {TABLE} forward oifname @bridges ct state established,related accept
add rule {TABLE} forward oifname @bridges ct status dnat accept
add rule {TABLE} forward oifname @bridges ip daddr . tcp dport @routed_tcp accept
add rule {TABLE} forward oifname @bridges ip daddr . udp dport @routed_udp accept
add rule {TABLE} forward iifname != @bridges oifname @open_bridges accept
add rule {TABLE} forward oifname @bridges iifname . oifname != @bridge_pairs drop
"""
# how many constant rules each chain has (a flushed chain has none)
RULE_COUNTS = {c: sum(1 for line in _RULES.splitlines() if line.split()[4] == c)
               for c in BASE_CHAINS}


def tag(owner: str, name: str) -> str:
    """An element's comment: the owner (state root) and the network name or container id."""
    return f"{owner}:{name}"


# -- the state read back from the kernel -------------------------------------

class Element(NamedTuple):
    key: str                  # nft text of the key: 8080, 127.0.0.1 . 8080, "minirun0"
    comment: str | None = None
    value: str | None = None  # nft text of a map's value: 10.88.5.2 . 80


class NftState:
    """What `nft -j list table ip minirun` says, reduced to what minirun decides on."""

    def __init__(self, exists: bool = False, elements: dict[str, list[Element]] | None = None,
                 user_rules: int = 0):
        self.exists = exists
        self.elements = {} if elements is None else elements
        self.user_rules = user_rules

    def __eq__(self, other) -> bool:
        return isinstance(other, NftState) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"NftState({self.exists!r}, {self.elements!r}, {self.user_rules!r})"

    def find(self, set_name: str, key: str) -> Element | None:
        return next((e for e in self.elements.get(set_name, []) if e.key == key), None)

    def _names(self, owner: str, sets: tuple[str, ...]) -> set[str]:
        out = set()
        for s in sets:
            for e in self.elements.get(s, []):
                who, name = split_tag(e.comment)
                if who == owner and name:
                    out.add(name)
        return out

    def networks(self, owner: str = DEFAULT_OWNER) -> set[str]:
        """The networks of `owner` with elements here."""
        return self._names(owner, NET_SETS)

    def containers(self, owner: str = DEFAULT_OWNER) -> set[str]:
        """The containers of `owner` with published ports here."""
        return self._names(owner, CONTAINER_SETS)

    def only(self, owner: str, network: str) -> bool:
        """Whether nothing but `network`'s elements and `owner`'s ports is left."""
        mine = tag(owner, network)
        return (all(e.comment == mine for s in NET_SETS for e in self.elements.get(s, []))
                and all(split_tag(e.comment)[0] == owner
                        for m in CONTAINER_SETS for e in self.elements.get(m, [])))


def _types(t) -> list[str]:
    if isinstance(t, list):
        return t
    return [p.strip() for p in str(t).split(" . ")]


def _text(val, types: list[str]) -> str:
    if isinstance(val, dict) and "concat" in val:
        return " . ".join(_text(v, [t]) for v, t in zip(val["concat"], types))
    if isinstance(val, dict) and "prefix" in val:
        return f"{val['prefix']['addr']}/{val['prefix']['len']}"
    if isinstance(val, dict) and "range" in val:
        return "-".join(str(v) for v in val["range"])
    if isinstance(val, str) and types and types[0] == "ifname":
        return f'"{val}"'
    return str(val)


def parse_state(listing: str) -> NftState:
    """Parse the JSON listing of `table ip minirun` (empty text = no table)."""
    state = NftState()
    if not listing.strip():
        return state
    for obj in json.loads(listing).get("nftables", []):
        if "table" in obj:
            state.exists = True
        kind = "set" if "set" in obj else "map" if "map" in obj else None
        if kind:
            s = obj[kind]
            keyt = _types(s["type"])
            valt = _types(s.get("map", ""))
            elems = []
            for raw in s.get("elem", []):
                value = None
                if kind == "map":
                    raw, value = raw[0], _text(raw[1], valt)
                comment = None
                if isinstance(raw, dict) and "elem" in raw:
                    comment = raw["elem"].get("comment")
                    raw = raw["elem"]["val"]
                elems.append(Element(_text(raw, keyt), comment, value))
            state.elements[s["name"]] = elems
        if "rule" in obj and obj["rule"].get("chain") == "user":
            state.user_rules += 1
    return state


# The TEXT listing of the table, searched for just the keys a removal needs: an element
# with a comment is printed `KEY comment "COMMENT"`, KEY right after "{ ", ", " or a
# wrapped line's indentation (a comment holds no '"', so `KEY comment "` is always an
# element's start). The listing costs ~7 ms at 2000 elements, the searches ~0.1 ms,
# where the JSON listing and parse_state cost ~23 ms; removals read the table once per
# batch (batch.py).
_TAGGED = re.compile(r'(?<=[\s{,])([0-9][0-9.]*(?: \. [0-9]+)?) comment "([^"]*)"')


def _block(listing: str, name: str) -> str:
    """The text of set or map `name` in the listing ("" if it has none)."""
    for kind in ("map", "set"):
        start = listing.find(f"\n\t{kind} {name} {{\n")
        if start >= 0:
            end = listing.find("\n\t}", start + 1)
            return listing[start:end if end >= 0 else len(listing)]
    return ""


def _comment_of(block: str, key: str) -> str | None:
    """The comment of the element `key` in a block (None: absent, or no comment)."""
    needle = f'{key} comment "'
    i = block.find(needle)
    while i >= 0:
        if i > 0 and block[i - 1] in " \t\n{,":
            j = i + len(needle)
            k = block.find('"', j)
            return block[j:k] if k >= 0 else None
        i = block.find(needle, i + 1)
    return None


def container_elements(listing: str, forwards: list[PortForward]) -> NftState:
    """From the text listing of `table ip minirun` (empty text = no table): the map
    elements of `forwards`' keys that are there with a comment, and every element of
    the routed sets that has one, as (key, comment): what render_remove_container
    needs. An element printed any other way is not seen, so it is never deleted."""
    state = NftState()
    if not listing.strip():
        return state
    state.exists = True
    blocks: dict[str, str] = {}
    for fw in forwards:
        name, key, _ = _map_entry(fw)
        if name not in blocks:
            blocks[name] = _block(listing, name)
        comment = _comment_of(blocks[name], key)
        if comment is not None:
            state.elements.setdefault(name, []).append(Element(key, comment))
    for name in ROUTED_SETS:
        state.elements[name] = [Element(k, c) for k, c in _TAGGED.findall(_block(listing, name))]
    return state


# -- pure renderers -----------------------------------------------------------

def _map_entry(fw: PortForward) -> tuple[str, str, str]:
    """(map name, key text, value text) of one published port."""
    value = f"{fw.container_ip} . {fw.container_port}"
    if fw.host_ip is None:
        return f"ports_{fw.proto}", str(fw.host_port), value
    return f"hostports_{fw.proto}", f"{fw.host_ip} . {fw.host_port}", value


def _net_elements(net: NetworkInfo) -> list[tuple[str, str]]:
    """A NAT network's subnet is masqueraded on the way out (`subnets`), a routed one's is
    not (`routed_subnets`: only the hairpin masquerade); a `nat-unprotected` network's
    bridge accepts routed traffic to any port from outside minirun's bridges."""
    out = [("bridges", f'"{net.bridge}"'),
           ("bridge_pairs", f'"{net.bridge}" . "{net.bridge}"'),
           ("routed_subnets" if net.mode == "routed" else "subnets", net.subnet)]
    if net.mode == "nat-unprotected":
        out.append(("open_bridges", f'"{net.bridge}"'))
    return out


def _routed_entry(fw: PortForward) -> tuple[str, str]:
    """(set name, key) opening a published port at the container's own address."""
    return f"routed_{fw.proto}", f"{fw.container_ip} . {fw.container_port}"


def render_add_routed(container_id: str, net: NetworkInfo, forwards: list[PortForward],
                      owner: str = DEFAULT_OWNER) -> str:
    """On a routed network, the published container ports reachable by routing (`add`:
    the container's own address makes the key its own)."""
    check_name("container id", container_id)
    return "".join(f'add element {TABLE} {name} {{ {key} comment '
                   f'"{tag(owner, container_id)}" }}\n'
                   for name, key in (_routed_entry(fw)
                                     for fw in routed_forwards(net, forwards)))


def render_base() -> str:
    """minirun's table, sets, maps and chains, and the constant rules (flushed and re-added)."""
    flush = "".join(f"flush chain {TABLE} {c}\n" for c in BASE_CHAINS)
    return _DECLARATIONS + flush + _RULES


def render_setup_network(net: NetworkInfo, owner: str = DEFAULT_OWNER) -> str:
    elements = "".join(f'add element {TABLE} {s} {{ {key} comment "{tag(owner, net.name)}" }}\n'
                       for s, key in _net_elements(net))
    return render_base() + elements


def render_teardown_network(net: NetworkInfo, state: NftState, owner: str = DEFAULT_OWNER) -> str:
    """Delete the network's elements that are there and this owner's; the whole table
    when nothing else (no element of any owner but this owner's ports) is left."""
    if not state.exists:
        return ""
    if state.only(owner, net.name) and state.user_rules == 0:
        return f"delete table {TABLE}\n"
    out = []  # whatever the network's mode was: every element tagged with it
    for s in NET_SETS:
        for e in state.elements.get(s, []):
            if e.comment == tag(owner, net.name):
                out.append(f"delete element {TABLE} {s} {{ {e.key} }}\n")
    return "".join(out)


def render_add_container(container_id: str, net: NetworkInfo, forwards: list[PortForward],
                         owner: str = DEFAULT_OWNER) -> str:
    return render_add_elements([(container_id, fw) for fw in forwards], owner)


def render_add_elements(items: list[tuple[str, PortForward]], owner: str = DEFAULT_OWNER) -> str:
    """`create` (fails if the key exists) the map elements of (container id, forward) pairs."""
    out = []
    for container_id, fw in items:
        check_name("container id", container_id)
        name, key, value = _map_entry(fw)
        out.append(f'create element {TABLE} {name} {{ {key} comment '
                   f'"{tag(owner, container_id)}" : {value} }}\n')
    return "".join(out)


def render_remove_container(container_id: str, net: NetworkInfo, forwards: list[PortForward],
                            state: NftState | None = None, owner: str = DEFAULT_OWNER) -> str:
    """Delete the container's map elements; with `state`, only those present and tagged
    with the owner and its id."""
    check_name("container id", container_id)
    out = []
    for fw in forwards:
        name, key, _ = _map_entry(fw)
        if state is not None:
            e = state.find(name, key)
            if e is None or e.comment != tag(owner, container_id):
                continue
        out.append(f"delete element {TABLE} {name} {{ {key} }}\n")
    if state is None:
        out += [f"delete element {TABLE} {name} {{ {key} }}\n"
                for name, key in map(_routed_entry, routed_forwards(net, forwards))]
    else:
        out += [f"delete element {TABLE} {name} {{ {e.key} }}\n" for name in ROUTED_SETS
                for e in state.elements.get(name, []) if e.comment == tag(owner, container_id)]
    return "".join(dict.fromkeys(out))


def render_purge_container(container_id: str, state: NftState, owner: str = DEFAULT_OWNER) -> str:
    """Delete every map element tagged with this owner's container id."""
    check_name("container id", container_id)
    return "".join(f"delete element {TABLE} {m} {{ {e.key} }}\n"
                   for m in CONTAINER_SETS for e in state.elements.get(m, [])
                   if e.comment == tag(owner, container_id))


def base_intact(rs: foreign.Ruleset) -> bool:
    """Whether minirun's table is there with its hooked chains and constant rules (the
    number of rules per chain: a flush empties chains; one deleted rule may go unseen)."""
    family, table = foreign.OWN_TABLE
    for chain in BASE_CHAINS:
        c = rs.chains.get((family, table, chain))
        if c is None or c.get("hook") != HOOKS.get(chain):
            return False
        if len(rs.rules_of((family, table, chain))) != RULE_COUNTS[chain]:
            return False
    return True


def _filter_table_as_saved(listing, net: NetworkInfo, owner: str = DEFAULT_OWNER) -> str:
    """The part of `iptables-save -t filter` the compatibility renderers look at, rebuilt
    from the JSON listing of iptables-nft's `ip filter` table: whether minirun's chain
    and its jump from FORWARD exist, and its rules -- those naming this network's bridge
    as the exact lines minirun adds for it, any other as a line without its tag."""
    chains, rules = [], []
    objects = json.loads(listing)["nftables"] if isinstance(listing, str) else listing
    for obj in objects:
        if "chain" in obj:
            chains.append(obj["chain"]["name"])
        elif "rule" in obj:
            rule = obj["rule"]
            exprs = rule.get("expr", [])
            if rule["chain"] == "FORWARD":
                if any(e.get("jump", {}).get("target") == _ipt.COMPAT_CHAIN for e in exprs):
                    rules.append(f"-A FORWARD -j {_ipt.COMPAT_CHAIN}")
            elif rule["chain"] == _ipt.COMPAT_CHAIN:
                names = {e["match"].get("right") for e in exprs
                         if e.get("match", {}).get("left", {}).get("meta", {}).get("key")
                         in ("iifname", "oifname")}
                rules.append("ours" if net.bridge in names
                             else f"-A {_ipt.COMPAT_CHAIN} -m comment --comment other")
    if "ours" in rules:
        rules = [r for r in rules if r != "ours"] + _ipt.compat_rules(net, owner)
    return ("*filter\n" + "".join(f":{c} - [0:0]\n" for c in chains)
            + "".join(f"{r}\n" for r in rules) + "COMMIT\n")


# -- the backend --------------------------------------------------------------

class NftablesFirewall:
    name = "nftables"
    LEGACY_TABLES = "/proc/net/ip_tables_names"  # this network namespace's legacy tables

    def __init__(self, runner: Runner, lock_path: Path | str | None = None,
                 owner: str = DEFAULT_OWNER):
        self.runner = runner
        self.lock_path = Path(lock_path) if lock_path else default_lock_path()
        self.owner = check_owner(owner)

    def check_available(self) -> None:
        if not (self.runner.available("libnftables") or self.runner.available("nft")):
            raise UsageError("--firewall nftables needs libnftables or the nft tool: "
                             "apt-get install nftables")

    # plumbing
    def _apply(self, op: str, script: str) -> None:
        apply_nft(self.runner, op, script)

    def _state(self) -> NftState:
        try:
            return parse_state(self.runner.nft(f"list table {TABLE}", json=True))
        except CommandFailed as exc:
            if "No such file or directory" in exc.message:
                return NftState()
            raise fail("nft", f"list table {TABLE}", exc) from None

    def _container_elements(self, items) -> NftState:
        """The elements render_remove_container needs for these (container id, network,
        forwards): each key looked up in the kernel where the runner can (O(1) each),
        else what container_elements finds in the listing (O(N)). A routed network's
        container: the listing, which has every routed element tagged with it."""
        forwards = [fw for _, _, fws in items for fw in fws]
        lookup = getattr(self.runner, "element_comments", None)
        if lookup is not None and all(net.mode != "routed" for _, net, _ in items):
            wanted = list(dict.fromkeys(_map_entry(fw)[:2] for fw in forwards))
            try:
                found = lookup(TABLE.split()[1], wanted)
            except CommandFailed:
                pass  # the listing, below
            else:
                state = NftState(exists=True)
                for (name, key), comment in found.items():
                    state.elements.setdefault(name, []).append(Element(key, comment))
                return state
        try:
            return container_elements(self.runner.nft(f"list table {TABLE}"), forwards)
        except CommandFailed as exc:
            if "No such file or directory" in exc.message:
                return NftState()
            raise fail("nft", f"list table {TABLE}", exc) from None

    def _ruleset(self, op: str) -> foreign.Ruleset:
        """Every table's chains and rules, no set elements: cheap whatever the maps hold."""
        try:
            return foreign.parse_ruleset(self.runner.nft("list ruleset", json=True, terse=True))
        except CommandFailed as exc:
            raise fail("nft", op, exc) from None

    def _iptables_tools(self) -> bool:
        return self.runner.available("iptables-restore")

    def _iptables_forward(self, rs: foreign.Ruleset) -> bool:
        """Whether iptables-nft's `filter FORWARD` is there for the compatibility rules."""
        return ("ip", "filter", "FORWARD") in rs.chains and self._iptables_tools()

    def _compat(self, op: str, render, net: NetworkInfo, rs: foreign.Ruleset) -> None:
        """Apply the iptables FORWARD compatibility rules, rendered from what the filter
        table holds. It is read from the in-process ruleset listing (iptables-nft keeps it
        there) instead of an `iptables-save` process: that fork/exec was ~8 ms of every
        start on hosts with an iptables FORWARD chain (any host with Docker)."""
        try:
            saved = _filter_table_as_saved(rs.table_objects("ip", "filter"), net, self.owner)
        except (ValueError, KeyError, TypeError):
            try:
                saved = self.runner.run(["iptables-save", "-t", "filter"])
            except CommandFailed as exc:
                raise fail("iptables-save", op, exc) from None
        text = render(saved)
        if text:
            _ipt.apply_restore(self.runner, op, text, why=why_of(op, compat=True))

    def _legacy_filter(self) -> bool:
        try:
            with open(self.LEGACY_TABLES) as f:
                return "filter" in f.read().split()
        except OSError:
            return False

    def _legacy_save(self, op: str, required: bool) -> str | None:
        """`iptables-legacy-save -t filter` where legacy tables exist; None where they
        don't (or, unless `required`, where the tools to see them are missing)."""
        if not self._legacy_filter():
            return None
        if not (self.runner.available(_ipt.LEGACY_SAVE[0])
                and self.runner.available(_ipt.LEGACY_RESTORE[0])):
            if required:
                raise MinirunError(
                    f"nft: {op}: this host has iptables-legacy tables (/proc/net/ip_tables_names "
                    f"lists filter) whose FORWARD chain may drop the containers' traffic, but "
                    f"iptables-legacy-save/-restore are missing: apt-get install iptables")
            return None
        try:
            return self.runner.run(_ipt.LEGACY_SAVE)
        except CommandFailed as exc:
            raise fail(_ipt.LEGACY_SAVE[0], op, exc) from None

    def _legacy(self, op: str, net: NetworkInfo, setup: bool) -> None:
        saved = self._legacy_save(op, required=setup)
        if saved is None:
            return
        if setup:
            text = (_ipt.render_forward_compat_setup(net, saved, self.owner)
                    if _ipt.legacy_needs_compat(saved) else "")
        else:
            text = _ipt.render_forward_compat_teardown(net, saved, self.owner)
        _ipt.apply_restore(self.runner, op, text, _ipt.LEGACY_RESTORE,
                           why=why_of(op, compat=True))

    def _iptables_side(self, op: str, net: NetworkInfo, rs: foreign.Ruleset, setup: bool) -> None:
        """The FORWARD compatibility rules of iptables-nft's and of the legacy tables."""
        if self._iptables_forward(rs):
            render = _ipt.render_forward_compat_setup if setup \
                else _ipt.render_forward_compat_teardown
            self._compat(op, lambda saved: render(net, saved, self.owner), net, rs)
        self._legacy(op, net, setup)

    def _setup(self, op: str, net: NetworkInfo) -> None:
        """setup_network's work; the caller holds the lock."""
        rs = self._ruleset(op)
        self._apply(op, render_setup_network(net, self.owner)
                    + foreign.render_setup(net, self.owner, rs, self._iptables_tools()))
        self._iptables_side(op, net, rs, setup=True)

    def _teardown_foreign(self, net: NetworkInfo, rs: foreign.Ruleset) -> str:
        return foreign.render_teardown(net, self.owner, rs)

    # interface
    def setup_network(self, net: NetworkInfo) -> None:
        with locked(self.lock_path):
            self._setup(f"set up network {net.name}", net)

    def teardown_network(self, net: NetworkInfo) -> None:
        op = f"tear down network {net.name}"
        with locked(self.lock_path):
            rs = self._ruleset(op)
            self._apply(op, render_teardown_network(net, self._state(), self.owner)
                        + self._teardown_foreign(net, rs))
            self._iptables_side(op, net, rs, setup=False)

    def intact(self, nets: list[NetworkInfo]) -> bool:
        """Cheap (~1 ms): one terse ruleset listing, one listing of the `bridges` set,
        and on hosts with legacy iptables tables one iptables-legacy-save."""
        if not nets:
            return True
        op = "check the rules"
        rs = self._ruleset(op)
        if not base_intact(rs) or not foreign.intact(rs, nets, self.owner, self._iptables_tools()):
            return False
        try:
            bridges = parse_state(self.runner.nft(f"list set {TABLE} bridges", json=True))
        except CommandFailed:
            return False
        for net in nets:
            e = bridges.find("bridges", f'"{net.bridge}"')
            if e is None or e.comment != tag(self.owner, net.name):
                return False
        if self._iptables_forward(rs):
            objs = rs.table_objects("ip", "filter")
            try:
                if any(_ipt.render_forward_compat_setup(
                        net, _filter_table_as_saved(objs, net, self.owner), self.owner)
                       for net in nets):
                    return False
            except (KeyError, TypeError, ValueError):
                pass  # a listing this code does not understand: no verdict from it
        saved = self._legacy_save(op, required=False)
        if saved is not None and _ipt.legacy_needs_compat(saved):
            if any(_ipt.render_forward_compat_setup(net, saved, self.owner) for net in nets):
                return False
        return True

    def restore(self, net: NetworkInfo, containers: dict[str, list[PortForward]]) -> None:
        op = f"restore network {net.name}"
        with locked(self.lock_path):
            self._setup(op, net)
            self._add_elements(op, [(cid, fw) for cid, fws in containers.items() for fw in fws])
            self._apply(op, "".join(render_add_routed(cid, net, fws, self.owner)
                                    for cid, fws in containers.items()))

    def _add_elements(self, op: str, items: list[tuple[str, PortForward]]) -> None:
        """Create the elements; those already there with our tag are fine, another's are a
        Conflict. The caller holds the lock."""
        if apply_nft(self.runner, op, render_add_elements(items, self.owner),
                     tolerate="File exists"):
            return
        # Some key is taken: ours from an earlier attempt (fine), or another's (refuse).
        state = self._state()
        missing = []
        for cid, fw in items:
            name, key, value = _map_entry(fw)
            e = state.find(name, key)
            if e is None:
                missing.append((cid, fw))
            elif e.comment != tag(self.owner, cid) or e.value != value:
                raise Conflict(f"nft: {op}: host port {fw.host_ip or '0.0.0.0'}:"
                               f"{fw.host_port}/{fw.proto} is already published "
                               f"by {published_by(self.owner, e.comment)}")
        self._apply(op, render_add_elements(missing, self.owner))

    def add_container(self, container_id: str, net: NetworkInfo,
                      forwards: list[PortForward]) -> None:
        items = [(container_id, fw) for fw in forwards]
        if not items:
            return
        check_name("container id", container_id)
        with locked(self.lock_path):
            self._add_elements(f"add container {container_id}", items)
            self._apply(f"add container {container_id}",
                        render_add_routed(container_id, net, forwards, self.owner))

    def remove_container(self, container_id: str, net: NetworkInfo,
                         forwards: list[PortForward]) -> None:
        """Threads of this process removing containers at once (`rm -f` of many) share
        one read of the table and one transaction (see batch.py): the read is O(N)."""
        from minirun.network.firewall.batch import batcher
        batcher(str(self.lock_path), self.owner).submit(
            (container_id, net, forwards), self._remove_containers)

    def _remove_containers(self, items) -> list[BaseException | None]:
        """Remove several containers' elements, each only those present and tagged with
        this owner and its id: one read, one transaction; if that fails, one
        transaction each, so that each container gets its own error."""
        with locked(self.lock_path):
            state = self._container_elements(items)
            scripts = [render_remove_container(cid, net, fws, state, self.owner)
                       for cid, net, fws in items]
            if len(items) > 1:
                ids = ", ".join(cid for cid, _, _ in items)
                try:
                    self._apply(f"remove containers {ids}", "".join(scripts))
                    return [None] * len(items)
                except MinirunError:
                    pass  # each alone below: the transaction changed nothing
            errors: list[BaseException | None] = []
            for (cid, _, _), script in zip(items, scripts):
                try:
                    self._apply(f"remove container {cid}", script)
                    errors.append(None)
                except MinirunError as exc:
                    errors.append(exc)
            return errors

    def remove_last_container(self, container_id: str, net: NetworkInfo,
                              forwards: list[PortForward]) -> None:
        """One transaction instead of two: the container's elements and the network's
        rules, or simply the whole table when nothing else is left in it."""
        op = f"remove container {container_id} and network {net.name}"
        with locked(self.lock_path):
            rs = self._ruleset(op)
            state = self._state()
            network = render_teardown_network(net, state, self.owner)
            if network == f"delete table {TABLE}\n":
                script = network  # the table takes its elements with it
            else:
                script = render_remove_container(container_id, net, forwards, state,
                                                 self.owner) + network
            script += self._teardown_foreign(net, rs)
            side = None
            if self._iptables_forward(rs) or self._legacy_filter():
                # iptables' rules and ours are independent: remove both at once, so
                # their kernel waits overlap.
                import threading
                errors: list[BaseException] = []

                def run_side():
                    try:
                        self._iptables_side(f"tear down network {net.name}", net, rs, False)
                    except BaseException as exc:  # re-raised in this thread
                        errors.append(exc)
                side = threading.Thread(target=run_side)
                side.start()
            try:
                self._apply(op, script)
            finally:
                if side is not None:
                    side.join()
            if side is not None and errors:
                raise errors[0]

    def purge_container(self, container_id: str) -> None:
        with locked(self.lock_path):
            self._apply(f"purge container {container_id}",
                        render_purge_container(container_id, self._state(), self.owner))

    def container_ids(self) -> set[str]:
        return self._state().containers(self.owner)

    def network_names(self) -> set[str]:
        return self._state().networks(self.owner)
