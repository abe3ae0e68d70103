"""The iptables backend: minirun's own chains, one jump from each built-in chain.

    raw     PREROUTING  -> MINIRUN-PREROUTING   drop 127.0.0.0/8 arriving on anything but lo
                                                (route_localnet is on for the bridges: CVE-2020-8558)
    nat     PREROUTING, OUTPUT (-m addrtype --dst-type LOCAL) -> MINIRUN-DNAT
                                                one DNAT rule per published port, tagged
                                                "minirun:<container id>"; host-address rules
                                                are inserted first, any-address ones appended
            POSTROUTING -> MINIRUN-POSTROUTING   per network: egress masquerade (subnet leaving by
                                                another interface; not for routed networks), 127.0.0.0/8 leaving on the
                                                bridge (localhost publishing), DNATed subnet
                                                traffic back out the bridge (hairpin)
    filter  FORWARD     -> MINIRUN-FORWARD      1. -j MINIRUN-USER  (the admin hook)
                                                2. -j MINIRUN-INGRESS: per network, into the
                                                   bridge only replies, DNATed (published)
                                                   traffic and same-bridge traffic (routed
                                                   networks: also each published container
                                                   port at the container's address, tagged
                                                   with the container id; nat-unprotected:
                                                   everything); the rest
                                                   DROP (isolation between networks, no routing
                                                   to unpublished ports from the LAN)
                                                3. per network: -i <bridge> -j ACCEPT (egress)

Ownership: every per-network rule carries `-m comment --comment
"minirun:<owner>:net:<name>"`, every DNAT rule "minirun:<owner>:<container id>",
where <owner> is the state root's tag (several roots may share these chains).
Each instance lists, removes and purges only its own owner's rules.
The jumps are inserted at position 1 of the built-in chains, so minirun's
traffic flows even when the FORWARD policy is DROP; nothing else is ever
flushed, reordered or edited. Each change is ONE `iptables-restore -w --noflush`
batch (atomic in the nf_tables flavour). Changes read `iptables-save` first and
are taken under an flock (`lock_path`), so concurrent setups add nothing twice.
When no rule of any owner is left (but this owner's DNAT rules being torn down)
and MINIRUN-USER is empty, the jumps and chains go.

A flushed firewall (`iptables -F; iptables -t nat -F; iptables -t raw -F`) leaves
minirun's chains empty and the jumps gone: `intact()` sees it in one
`iptables-save`, `restore()` puts the constant rules (in place), the jumps, the
network's rules and the containers' DNAT rules back in one batch. Callers turn
`route_localnet` on for a bridge only after setup_network/restore returned: the
raw 127.0.0.0/8 drop is part of what they put in.

nftables-only forward chains with policy drop (an administrator's `inet filter`,
say) are opened for minirun's bridges with nft rules of minirun's, see `foreign`
(read and written through libnftables, loaded only for network setup/teardown and
intact()).

Admin hook: chain MINIRUN-USER (filter) is jumped to first from MINIRUN-FORWARD
and is never flushed or deleted while it has rules. Put your own filtering of
container traffic there, e.g. `iptables -A MINIRUN-USER -i eth0 -o minirun0 -j DROP`;
RETURN (or falling off the end) hands the packet back to minirun. DNAT has
happened already, so match the container's address/port, or use
`-m conntrack --ctorigdstport 8080`.
"""
from __future__ import annotations

import re
from pathlib import Path

from minirun import oplog
from minirun.errors import Conflict, UsageError
from minirun.fsutil import locked
from minirun.network.firewall import foreign
from minirun.network.firewall.base import (DEFAULT_OWNER, CommandFailed, NetworkInfo, PortForward,
                                           Runner, apply_nft, check_name, check_owner,
                                           default_lock_path, fail, heredoc, published_by,
                                           routed_forwards, split_tag, why_of)

TABLES = ("raw", "nat", "filter")
USER_CHAIN = "MINIRUN-USER"

# table -> minirun chains, jumps from built-in chains, constant rules of a new chain
CHAINS = {
    "raw": ["MINIRUN-PREROUTING"],
    "nat": ["MINIRUN-DNAT", "MINIRUN-POSTROUTING"],
    "filter": ["MINIRUN-FORWARD", USER_CHAIN, "MINIRUN-INGRESS"],
}
JUMPS = {
    "raw": [("PREROUTING", "-j MINIRUN-PREROUTING")],
    "nat": [("PREROUTING", "-m addrtype --dst-type LOCAL -j MINIRUN-DNAT"),
            ("OUTPUT", "-m addrtype --dst-type LOCAL -j MINIRUN-DNAT"),
            ("POSTROUTING", "-j MINIRUN-POSTROUTING")],
    "filter": [("FORWARD", "-j MINIRUN-FORWARD")],
}
STATIC = {
    "MINIRUN-PREROUTING": ["-d 127.0.0.0/8 ! -i lo -j DROP"],
    "MINIRUN-FORWARD": [f"-j {USER_CHAIN}", "-j MINIRUN-INGRESS"],
}


def net_tag(name: str, owner: str = DEFAULT_OWNER) -> str:
    return f'-m comment --comment "minirun:{owner}:net:{name}"'


def container_tag(cid: str, owner: str = DEFAULT_OWNER) -> str:
    return f'-m comment --comment "minirun:{owner}:{cid}"'


def owned(tag: str) -> tuple[str | None, str, str]:
    """A tag (what follows "minirun:") -> (owner, "net" | "container", name)."""
    owner, rest = split_tag(tag)
    if rest.startswith("net:"):
        return owner, "net", rest[4:]
    return owner, "container", rest


_TAG = re.compile(r'--comment "minirun:([^"]*)"')


# -- iptables-save, parsed ----------------------------------------------------

class Table:
    def __init__(self, chains: dict[str, str] | None = None, rules: list[str] | None = None):
        self.chains = {} if chains is None else chains  # name -> policy ("-": user chains)
        self.rules = [] if rules is None else rules     # "-A CHAIN ..." lines, in order

    def __eq__(self, other) -> bool:
        return isinstance(other, Table) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Table({self.chains!r}, {self.rules!r})"

    def chain_rules(self, chain: str) -> list[str]:
        return [r for r in self.rules if r.split(" ", 2)[1] == chain]


def parse_save(text: str) -> dict[str, Table]:
    tables: dict[str, Table] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("*"):
            current = tables.setdefault(line[1:], Table())
        elif current is None or not line or line.startswith("#") or line == "COMMIT":
            continue
        elif line.startswith(":"):
            name, policy = line[1:].split()[:2]
            current.chains[name] = policy
        elif line.startswith("-A "):
            current.rules.append(line)
    return tables


def tags(saved: dict[str, Table]) -> list[str]:
    return [m.group(1) for t in saved.values() for r in t.rules for m in _TAG.finditer(r)]


def _delete(rule: str) -> str:
    """The `-D` line removing a saved `-A` rule."""
    return "-D " + rule[3:]


def _batch(parts: dict[str, list[str]]) -> str:
    return "".join(f"*{t}\n" + "".join(f"{l}\n" for l in parts[t]) + "COMMIT\n"
                   for t in TABLES if parts.get(t))


# -- pure renderers -----------------------------------------------------------

def network_rules(net: NetworkInfo, owner: str = DEFAULT_OWNER) -> dict[str, list[str]]:
    """The `-A` lines of one network, per table, exactly as iptables-save prints them."""
    tag, b, s = net_tag(net.name, owner), net.bridge, net.subnet
    # a routed network's subnet is not masqueraded on the way out; a nat-unprotected
    # network's bridge takes routed traffic to any port
    egress = [] if net.mode == "routed" else [
        f"-A MINIRUN-POSTROUTING -s {s} ! -o {b} {tag} -j MASQUERADE"]
    unprotected = [f"-A MINIRUN-INGRESS -o {b} {tag} -j ACCEPT"] \
        if net.mode == "nat-unprotected" else []
    return {
        "nat": egress + [
            f"-A MINIRUN-POSTROUTING -s 127.0.0.0/8 -o {b} {tag} -j MASQUERADE",
            f"-A MINIRUN-POSTROUTING -s {s} -o {b} -m conntrack --ctstate DNAT {tag} -j MASQUERADE",
        ],
        "filter": [
            f"-A MINIRUN-INGRESS -o {b} -m conntrack --ctstate RELATED,ESTABLISHED {tag} -j ACCEPT",
            f"-A MINIRUN-INGRESS -o {b} -m conntrack --ctstate DNAT {tag} -j ACCEPT",
            f"-A MINIRUN-INGRESS -i {b} -o {b} {tag} -j ACCEPT",
            *unprotected,
            f"-A MINIRUN-INGRESS -o {b} {tag} -j DROP",
            f"-A MINIRUN-FORWARD -i {b} {tag} -j ACCEPT",
        ],
    }


def routed_rules(cid: str, net: NetworkInfo, forwards: list[PortForward],
                 owner: str = DEFAULT_OWNER) -> list[str]:
    """On a routed network, the published container ports reachable by routing to the
    container's own address (inserted at the top of MINIRUN-INGRESS, before the drops)."""
    return [f"-A MINIRUN-INGRESS -d {fw.container_ip}/32 -o {net.bridge} -p {fw.proto} "
            f"-m {fw.proto} --dport {fw.container_port} {container_tag(cid, owner)} -j ACCEPT"
            for fw in routed_forwards(net, forwards)]


def _routed_lines(cid: str, net: NetworkInfo, forwards: list[PortForward],
                  state: dict[str, Table], owner: str) -> list[str]:
    present = state.get("filter", Table()).rules
    return [r.replace("-A MINIRUN-INGRESS", "-I MINIRUN-INGRESS 1", 1)
            for r in routed_rules(cid, net, forwards, owner) if r not in present]


def _chain(rule: str) -> str:
    return rule.split(" ", 2)[1]


def _setup_parts(net: NetworkInfo, state: dict[str, Table], owner: str) -> dict[str, list[str]]:
    want = network_rules(net, owner)
    tag = net_tag(net.name, owner)
    parts: dict[str, list[str]] = {}
    for t in TABLES:
        table = state.get(t, Table())
        new = [c for c in CHAINS[t] if c not in table.chains]
        lines = [f":{c} - [0:0]" for c in new]
        lines += [f"-A {c} {r}" for c in new for r in STATIC.get(c, [])]
        # a chain that is there but was flushed: its constant rules back, in their place
        lines += [f"-I {c} {i} {r}" for c in CHAINS[t] if c not in new
                  for i, r in enumerate(STATIC.get(c, []), 1) if f"-A {c} {r}" not in table.rules]
        for builtin, spec in JUMPS[t]:
            if f"-A {builtin} {spec}" not in table.rules:
                lines.append(f"-I {builtin} 1 {spec}")
        have = {_chain(r) for r in table.rules if tag in r}  # per chain: all or nothing
        lines += [r for r in want.get(t, []) if _chain(r) not in have]
        parts[t] = lines
    return parts


def render_setup_network(net: NetworkInfo, saved: str = "", owner: str = DEFAULT_OWNER) -> str:
    """What to add, given the current `iptables-save` output, for `net` to be set up
    (also after a flush: missing constant rules, jumps and network rules come back)."""
    return _batch(_setup_parts(net, parse_save(saved), owner))


def is_intact(saved: str, nets: list[NetworkInfo], owner: str = DEFAULT_OWNER) -> bool:
    """Whether nothing of the base and of these networks is missing from `iptables-save`."""
    state = parse_save(saved)
    return not any(_setup_parts(net, state, owner)[t] for net in nets for t in TABLES)


def render_teardown_network(net: NetworkInfo, saved: str, owner: str = DEFAULT_OWNER) -> str:
    """Remove the network's rules; the jumps and chains too when nothing else needs them:
    no rule tagged by another network or another owner, and MINIRUN-USER empty (this
    owner's DNAT rules left over go with the chains)."""
    state = parse_save(saved)
    others = [t for t in tags(state)
              if owned(t) != (owner, "net", net.name) and owned(t)[:2] != (owner, "container")]
    user = state.get("filter", Table()).chain_rules(USER_CHAIN)
    parts: dict[str, list[str]] = {}
    if not others and not user:
        for t in TABLES:
            table = state.get(t)
            if table is None:
                continue
            mine = [c for c in CHAINS[t] if c in table.chains]
            jumps = [r for r in table.rules
                     if r.split(" ", 2)[1] not in CHAINS[t] and re.search(r" -j (MINIRUN-\S+)$", r)
                     and r.rsplit(" ", 1)[1] in mine]
            parts[t] = ([_delete(r) for r in jumps] + [f"-F {c}" for c in mine]
                        + [f"-X {c}" for c in mine])
    else:
        for t, table in state.items():
            if t in TABLES:
                parts[t] = [_delete(r) for r in table.rules if net_tag(net.name, owner) in r]
    return _batch(parts)


def dnat_rule(cid: str, fw: PortForward, owner: str = DEFAULT_OWNER) -> str:
    dst = f"-d {fw.host_ip}/32 " if fw.host_ip else ""
    return (f"-A MINIRUN-DNAT {dst}-p {fw.proto} -m {fw.proto} --dport {fw.host_port} "
            f"{container_tag(cid, owner)} -j DNAT --to-destination "
            f"{fw.container_ip}:{fw.container_port}")


_DNAT = re.compile(r"-A MINIRUN-DNAT (?:-d (\S+)/32 )?-p (\w+) -m \w+ --dport (\d+) "
                   r'-m comment --comment "minirun:([^"]*)"')


def _dnat_lines(container_id: str, forwards: list[PortForward], state: dict[str, Table],
                owner: str, op: str) -> list[str]:
    check_name("container id", container_id)
    present = state.get("nat", Table()).rules
    holders = {}
    for r in present:
        m = _DNAT.match(r)
        if m:
            holders[(m.group(1), m.group(2), int(m.group(3)))] = m.group(4)
    lines = []
    for fw in forwards:
        rule = dnat_rule(container_id, fw, owner)
        if rule in present:
            continue
        holder = holders.get((fw.host_ip, fw.proto, fw.host_port))
        if holder is not None and holder != f"{owner}:{container_id}":
            raise Conflict(f"iptables: {op}: host port "
                           f"{fw.host_ip or '0.0.0.0'}:{fw.host_port}/{fw.proto} "
                           f"is already published by {published_by(owner, holder)}")
        # Host-address rules go first so that they win over any-address ones.
        lines.append(rule.replace("-A MINIRUN-DNAT", "-I MINIRUN-DNAT 1", 1) if fw.host_ip else rule)
    return lines


def render_add_container(container_id: str, net: NetworkInfo, forwards: list[PortForward],
                         saved: str = "", owner: str = DEFAULT_OWNER) -> str:
    """One batch adding the container's DNAT rules (those not already there).

    Raises Conflict when another container (of any owner) already has a rule for the
    same port.
    """
    state = parse_save(saved)
    return _batch({"nat": _dnat_lines(container_id, forwards, state, owner,
                                      f"add container {container_id}"),
                   "filter": _routed_lines(container_id, net, forwards, state, owner)})


def render_restore(net: NetworkInfo, containers: dict[str, list[PortForward]], saved: str,
                   owner: str = DEFAULT_OWNER) -> str:
    """One batch: whatever setup_network would add, and the containers' missing DNAT rules."""
    state = parse_save(saved)
    parts = _setup_parts(net, state, owner)
    for cid, forwards in containers.items():
        parts["nat"] += _dnat_lines(cid, forwards, state, owner, f"restore network {net.name}")
        parts["filter"] += _routed_lines(cid, net, forwards, state, owner)
    return _batch(parts)


def render_remove_container(container_id: str, net: NetworkInfo, forwards: list[PortForward],
                            saved: str | None = None, owner: str = DEFAULT_OWNER) -> str:
    """Delete the container's DNAT rules; with `saved`, only those present."""
    check_name("container id", container_id)
    state = None if saved is None else parse_save(saved)
    present = None if state is None else state.get("nat", Table()).rules
    lines = [_delete(r) for r in dict.fromkeys(dnat_rule(container_id, fw, owner)
                                               for fw in forwards)
             if present is None or r in present]
    if state is None:
        routed = routed_rules(container_id, net, forwards, owner)
    else:  # whatever the network's mode: every filter rule tagged with the container
        routed = [r for r in state.get("filter", Table()).rules
                  if container_tag(container_id, owner) in r]
    return _batch({"nat": lines, "filter": [_delete(r) for r in routed]})


def render_purge_container(container_id: str, saved: str, owner: str = DEFAULT_OWNER) -> str:
    """Delete every rule tagged with this owner's container id."""
    check_name("container id", container_id)
    tag = container_tag(container_id, owner)
    return _batch({t: [_delete(r) for r in table.rules if tag in r]
                   for t, table in parse_save(saved).items()})


# -- for the nftables backend: open iptables' FORWARD for minirun's bridges ----

COMPAT_CHAIN = "MINIRUN-FORWARD"
LEGACY_SAVE = ["iptables-legacy-save", "-t", "filter"]
LEGACY_RESTORE = ["iptables-legacy-restore", "-w", "--noflush"]


def compat_rules(net: NetworkInfo, owner: str = DEFAULT_OWNER) -> list[str]:
    tag, b = net_tag(net.name, owner), net.bridge
    if net.mode != "nat":  # routed access: minirun's nft forward chain decides what enters
        return [f"-A {COMPAT_CHAIN} -o {b} {tag} -j ACCEPT",
                f"-A {COMPAT_CHAIN} -i {b} {tag} -j ACCEPT"]
    return [f"-A {COMPAT_CHAIN} -o {b} -m conntrack --ctstate RELATED,ESTABLISHED {tag} -j ACCEPT",
            f"-A {COMPAT_CHAIN} -o {b} -m conntrack --ctstate DNAT {tag} -j ACCEPT",
            f"-A {COMPAT_CHAIN} -i {b} {tag} -j ACCEPT"]


def render_forward_compat_setup(net: NetworkInfo, saved: str, owner: str = DEFAULT_OWNER) -> str:
    table = parse_save(saved).get("filter", Table())
    lines = []
    if COMPAT_CHAIN not in table.chains:
        lines.append(f":{COMPAT_CHAIN} - [0:0]")
    if f"-A FORWARD -j {COMPAT_CHAIN}" not in table.rules:
        lines.append(f"-I FORWARD 1 -j {COMPAT_CHAIN}")
    if not any(net_tag(net.name, owner) in r for r in table.rules):
        lines += compat_rules(net, owner)
    return _batch({"filter": lines})


def legacy_needs_compat(saved: str) -> bool:
    """Whether the legacy filter table's FORWARD chain can drop minirun's traffic: policy
    DROP, or rules of someone's (Docker: `-A FORWARD -j DOCKER-USER`...), or our jump is
    there already (keep maintaining it)."""
    table = parse_save(saved).get("filter", Table())
    return table.chains.get("FORWARD") == "DROP" or bool(table.chain_rules("FORWARD"))


def render_forward_compat_teardown(net: NetworkInfo, saved: str,
                                   owner: str = DEFAULT_OWNER) -> str:
    table = parse_save(saved).get("filter", Table())
    if COMPAT_CHAIN not in table.chains:
        return ""
    mine = table.chain_rules(COMPAT_CHAIN)
    if all(net_tag(net.name, owner) in r for r in mine):  # the last network: everything goes
        lines = [_delete(r) for r in table.rules if r == f"-A FORWARD -j {COMPAT_CHAIN}"]
        lines += [f"-F {COMPAT_CHAIN}", f"-X {COMPAT_CHAIN}"]
    else:
        lines = [_delete(r) for r in mine if net_tag(net.name, owner) in r]
    return _batch({"filter": lines})


# -- the backend --------------------------------------------------------------

RESTORE = ["iptables-restore", "-w", "--noflush"]


def apply_restore(runner: Runner, op: str, text: str, argv: list[str] = RESTORE,
                  why: str | None = None) -> None:
    if not text:
        return
    oplog.record(heredoc(" ".join(argv), text), why or why_of(op))
    if oplog.skip():
        return
    try:
        runner.run(argv, input=text)
    except CommandFailed as exc:
        raise fail(argv[0], op, exc) from None


class IptablesFirewall:
    name = "iptables"

    def __init__(self, runner: Runner, lock_path: Path | str | None = None,
                 owner: str = DEFAULT_OWNER):
        self.runner = runner
        self.lock_path = Path(lock_path) if lock_path else default_lock_path()
        self.owner = check_owner(owner)

    def check_available(self) -> None:
        missing = [t for t in ("iptables-save", "iptables-restore") if not self.runner.available(t)]
        if missing:
            raise UsageError("--firewall iptables needs iptables-save and iptables-restore "
                             "(missing: " + ", ".join(missing) + "): apt-get install iptables")

    def _save(self, op: str) -> str:
        try:
            return self.runner.run(["iptables-save"])
        except CommandFailed as exc:
            raise fail("iptables-save", op, exc) from None

    def _change(self, op: str, render) -> None:
        with locked(self.lock_path):
            apply_restore(self.runner, op, render(self._save(op)))

    # nftables-only forward chains with policy drop (see `foreign`)
    def _ruleset(self, op: str) -> foreign.Ruleset | None:
        """The host's nftables ruleset (no set elements), None without nftables."""
        if not (self.runner.available("libnftables") or self.runner.available("nft")):
            return None
        try:
            return foreign.parse_ruleset(self.runner.nft("list ruleset", json=True, terse=True))
        except CommandFailed as exc:
            raise fail("nft", op, exc) from None

    def _foreign(self, op: str, render) -> None:
        rs = self._ruleset(op)
        apply_nft(self.runner, op, render(rs) if rs is not None else "",
                  "another nftables table's forward chain would drop the containers' "
                  "traffic: accept the network's there too")

    def setup_network(self, net: NetworkInfo) -> None:
        op = f"set up network {net.name}"
        with locked(self.lock_path):
            apply_restore(self.runner, op,
                          render_setup_network(net, self._save(op), self.owner))
            self._foreign(op, lambda rs: foreign.render_setup(net, self.owner, rs, True))

    def teardown_network(self, net: NetworkInfo) -> None:
        op = f"tear down network {net.name}"
        with locked(self.lock_path):
            apply_restore(self.runner, op,
                          render_teardown_network(net, self._save(op), self.owner))
            self._foreign(op, lambda rs: foreign.render_teardown(net, self.owner, rs))

    def intact(self, nets: list[NetworkInfo]) -> bool:
        """One iptables-save (and, with nftables on the host, one terse nft listing for
        other tables' forward drop chains)."""
        if not nets:
            return True
        if not is_intact(self._save("check the rules"), nets, self.owner):
            return False
        rs = self._ruleset("check the rules")
        return rs is None or foreign.intact(rs, nets, self.owner, True)

    def restore(self, net: NetworkInfo, containers: dict[str, list[PortForward]]) -> None:
        op = f"restore network {net.name}"
        with locked(self.lock_path):
            apply_restore(self.runner, op,
                          render_restore(net, containers, self._save(op), self.owner))
            self._foreign(op, lambda rs: foreign.render_setup(net, self.owner, rs, True))

    def add_container(self, container_id: str, net: NetworkInfo,
                      forwards: list[PortForward]) -> None:
        self._change(f"add container {container_id}",
                     lambda s: render_add_container(container_id, net, forwards, s, self.owner))

    def remove_container(self, container_id: str, net: NetworkInfo,
                         forwards: list[PortForward]) -> None:
        self._change(f"remove container {container_id}",
                     lambda s: render_remove_container(container_id, net, forwards, s,
                                                       self.owner))

    def remove_last_container(self, container_id: str, net: NetworkInfo,
                              forwards: list[PortForward]) -> None:
        self.remove_container(container_id, net, forwards)
        self.teardown_network(net)

    def purge_container(self, container_id: str) -> None:
        self._change(f"purge container {container_id}",
                     lambda s: render_purge_container(container_id, s, self.owner))

    def _mine(self, op: str, kind: str) -> set[str]:
        return {name for owner, k, name in map(owned, tags(parse_save(self._save(op))))
                if owner == self.owner and k == kind}

    def container_ids(self) -> set[str]:
        return self._mine("list containers", "container")

    def network_names(self) -> set[str]:
        return self._mine("list networks", "net")
