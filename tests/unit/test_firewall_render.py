"""Golden-text tests of the firewall renderers (both backends) and of the backends'
decisions, with a recording fake runner. No root, no kernel."""
from __future__ import annotations

import json
import textwrap

import pytest

from minirun import oplog
from minirun.errors import Conflict, MinirunError, UsageError
from minirun.network.firewall import get_firewall
from minirun.network.firewall import iptables as ipt
from minirun.network.firewall import nftables as nft
from minirun.network.firewall.base import (CommandFailed, NetworkInfo, PortForward,
                                           first_error_line)

NET = NetworkInfo("minirun", "minirun0", "10.88.5.0/24", "10.88.5.1")
NET2 = NetworkInfo("other", "minirun1", "10.88.6.0/24", "10.88.6.1")
FWD = [PortForward("tcp", None, 8080, "10.88.5.2", 80),
       PortForward("udp", "127.0.0.1", 5353, "10.88.5.2", 53)]
CID = "abc123"


def g(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


class FakeRunner:
    """Records every call; answers from canned outputs or raises canned failures."""

    def __init__(self, nft_answers=None, run_answers=None, tools=("iptables-restore", "iptables-save")):
        self.calls: list[tuple] = []
        self.nft_answers = nft_answers or {}  # script -> str | CommandFailed
        self.run_answers = run_answers or {}  # argv[0] -> str | CommandFailed
        self.tools = tools

    def _answer(self, answer):
        if isinstance(answer, list):  # successive answers
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if isinstance(answer, Exception):
            raise answer
        return answer or ""

    def nft(self, script, *, json=False, terse=False):
        self.calls.append(("nft", script, json))
        # a text listing (json False) may be answered apart: key (script, "text")
        text = None if json else self.nft_answers.get((script, "text"))
        return self._answer(text if text is not None else self.nft_answers.get(script, ""))

    def run(self, argv, input=None):
        self.calls.append(("run", list(argv), input))
        return self._answer(self.run_answers.get(argv[0], ""))

    def available(self, tool):
        return tool in self.tools

    def mutations(self):
        return [c for c in self.calls if (c[0] == "nft" and not c[2]
                                          and not c[1].startswith("list ")) or
                (c[0] == "run" and c[1][0] == "iptables-restore")]


# -- nftables ------------------------------------------------------------------

NFT_SETUP = g("""
    add table ip minirun
    add set ip minirun bridges { type ifname; }
    add set ip minirun bridge_pairs { type ifname . ifname; }
    add set ip minirun subnets { type ipv4_addr; flags interval; }
    add set ip minirun routed_subnets { type ipv4_addr; flags interval; }
    add set ip minirun open_bridges { type ifname; }
    add set ip minirun routed_tcp { type ipv4_addr . inet_service; }
    add set ip minirun routed_udp { type ipv4_addr . inet_service; }
    add map ip minirun hostports_tcp { type ipv4_addr . inet_service : ipv4_addr . inet_service; }
    add map ip minirun ports_tcp { type inet_service : ipv4_addr . inet_service; }
    add map ip minirun hostports_udp { type ipv4_addr . inet_service : ipv4_addr . inet_service; }
    add map ip minirun ports_udp { type inet_service : ipv4_addr . inet_service; }
    add chain ip minirun raw_prerouting { type filter hook prerouting priority raw; policy accept; }
    add chain ip minirun prerouting { type nat hook prerouting priority dstnat; policy accept; }
    add chain ip minirun output { type nat hook output priority -100; policy accept; }
    add chain ip minirun postrouting { type nat hook postrouting priority srcnat; policy accept; }
    add chain ip minirun forward { type filter hook forward priority filter; policy accept; }
    add chain ip minirun publish
    add chain ip minirun user
    flush chain ip minirun raw_prerouting
    flush chain ip minirun prerouting
    flush chain ip minirun output
    flush chain ip minirun postrouting
    flush chain ip minirun forward
    flush chain ip minirun publish
    add rule ip minirun raw_prerouting iifname != "lo" ip daddr 127.0.0.0/8 drop
    add rule ip minirun prerouting fib daddr type local jump publish
    add rule ip minirun output fib daddr type local jump publish
    add rule ip minirun publish dnat to ip daddr . tcp dport map @hostports_tcp
    add rule ip minirun publish dnat to tcp dport map @ports_tcp
    add rule ip minirun publish dnat to ip daddr . udp dport map @hostports_udp
    add rule ip minirun publish dnat to udp dport map @ports_udp
    add rule ip minirun postrouting ip saddr @subnets oifname != @bridges masquerade
    add rule ip minirun postrouting ip saddr 127.0.0.0/8 oifname @bridges masquerade
    add rule ip minirun postrouting ct status dnat ip saddr @subnets oifname @bridges masquerade
    add rule ip minirun postrouting ct status dnat ip saddr @routed_subnets oifname @bridges masquerade
    add rule ip minirun forward jump user
    add rule ip minirun forward oifname @bridges ct state established,related accept
    add rule ip minirun forward oifname @bridges ct status dnat accept
    add rule ip minirun forward oifname @bridges ip daddr . tcp dport @routed_tcp accept
    add rule ip minirun forward oifname @bridges ip daddr . udp dport @routed_udp accept
    add rule ip minirun forward iifname != @bridges oifname @open_bridges accept
    add rule ip minirun forward oifname @bridges iifname . oifname != @bridge_pairs drop
    add element ip minirun bridges { "minirun0" comment "default:minirun" }
    add element ip minirun bridge_pairs { "minirun0" . "minirun0" comment "default:minirun" }
    add element ip minirun subnets { 10.88.5.0/24 comment "default:minirun" }
""")

NFT_ADD = g("""
    create element ip minirun ports_tcp { 8080 comment "default:abc123" : 10.88.5.2 . 80 }
    create element ip minirun hostports_udp { 127.0.0.1 . 5353 comment "default:abc123" : 10.88.5.2 . 53 }
""")

NFT_REMOVE = g("""
    delete element ip minirun ports_tcp { 8080 }
    delete element ip minirun hostports_udp { 127.0.0.1 . 5353 }
""")


def _tagged(name: str, owner: str) -> str:
    return name if ":" in name else f"{owner}:{name}"


def nft_listing(nets=(NET,), containers=((CID, FWD),), user_rules=0, owner="default") -> str:
    """A `nft -j list table ip minirun` answer, shaped like nft 1.0.6's. Networks and
    container ids are tagged with `owner` unless they carry "<owner>:" already."""
    nets = [(n, _tagged(n.name, owner)) if isinstance(n, NetworkInfo) else n for n in nets]
    containers = [(_tagged(cid, owner), fwds) for cid, fwds in containers]
    objs = [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "ip", "name": "minirun"}}]
    objs.append({"set": {"name": "bridges", "type": "ifname", "elem": [
        {"elem": {"val": n.bridge, "comment": t}} for n, t in nets]}})
    objs.append({"set": {"name": "bridge_pairs", "type": ["ifname", "ifname"], "elem": [
        {"elem": {"val": {"concat": [n.bridge, n.bridge]}, "comment": t}} for n, t in nets]}})
    objs.append({"set": {"name": "subnets", "type": "ipv4_addr", "flags": ["interval"], "elem": [
        {"elem": {"val": {"prefix": {"addr": n.subnet.split("/")[0],
                                      "len": int(n.subnet.split("/")[1])}}, "comment": t}}
        for n, t in nets]}})
    maps: dict[str, list] = {m: [] for m in nft.PORT_MAPS}
    for cid, fwds in containers:
        for f in fwds:
            key = f.host_port if f.host_ip is None else {"concat": [f.host_ip, f.host_port]}
            name = f"ports_{f.proto}" if f.host_ip is None else f"hostports_{f.proto}"
            maps[name].append([{"elem": {"val": key, "comment": cid}},
                               {"concat": [f.container_ip, f.container_port]}])
    for name, elems in maps.items():
        mtype = "inet_service" if name.startswith("ports") else ["ipv4_addr", "inet_service"]
        obj = {"name": name, "type": mtype, "map": "ipv4_addr . inet_service"}
        if elems:
            obj["elem"] = elems
        objs.append({"map": obj})
    objs.append({"chain": {"name": "user", "table": "minirun"}})
    for i in range(user_rules):
        objs.append({"rule": {"chain": "user", "handle": 40 + i, "expr": []}})
    return json.dumps({"nftables": objs})


LIST = "list table ip minirun"
LIST_TEXT = (LIST, "text")  # the same listing in nft's text form (FakeRunner.nft)


def nft_text_listing(containers=((CID, FWD),), owner="default") -> str:
    """The container maps of a `nft list table ip minirun` answer, in nft 1.0.6's text
    form (the golden real one is in test_firewall_batch.py)."""
    maps: dict[str, list] = {m: [] for m in nft.PORT_MAPS}
    for cid, fwds in containers:
        for f in fwds:
            name, key, value = nft._map_entry(f)
            maps[name].append(f'{key} comment "{_tagged(cid, owner)}" : {value}')
    out = ["table ip minirun {"]
    for name, elems in maps.items():
        out.append(f"\tmap {name} {{")
        out.append("\t\ttype inet_service : ipv4_addr . inet_service")
        if elems:
            out.append("\t\telements = { " + ", ".join(elems) + " }")
        out.append("\t}")
    return "\n".join(out + ["}"]) + "\n"


def test_nft_render_setup_network():
    assert nft.render_setup_network(NET) == NFT_SETUP


def test_nft_render_add_and_remove_container():
    assert nft.render_add_container(CID, NET, FWD) == NFT_ADD
    assert nft.render_remove_container(CID, NET, FWD) == NFT_REMOVE


def test_nft_parse_state():
    state = nft.parse_state(nft_listing(nets=(NET, NET2)))
    assert state.exists and state.user_rules == 0
    assert state.networks("default") == {"minirun", "other"}
    assert state.containers("default") == {CID}
    assert state.networks("b") == state.containers("b") == set()
    assert state.find("ports_tcp", "8080") == nft.Element("8080", "default:" + CID, "10.88.5.2 . 80")
    assert state.find("hostports_udp", "127.0.0.1 . 5353").comment == "default:" + CID
    assert state.find("bridge_pairs", '"minirun1" . "minirun1"').comment == "default:other"
    assert state.find("subnets", "10.88.6.0/24").comment == "default:other"
    assert nft.parse_state("") == nft.NftState()


def test_nft_remove_only_what_is_present_and_ours():
    other = [PortForward("tcp", None, 9090, "10.88.5.3", 80)]
    state = nft.parse_state(nft_listing(containers=((CID, FWD[:1]), ("other1", other))))
    # 5353 is not there; 9090 belongs to someone else, even if asked to remove it
    assert nft.render_remove_container(CID, NET, FWD + other, state) == \
        "delete element ip minirun ports_tcp { 8080 }\n"
    assert nft.render_remove_container("nobody", NET, FWD, state) == ""
    assert nft.render_purge_container("other1", state) == \
        "delete element ip minirun ports_tcp { 9090 }\n"


def test_nft_render_teardown():
    two = nft.parse_state(nft_listing(nets=(NET, NET2)))
    assert nft.render_teardown_network(NET2, two) == g("""
        delete element ip minirun bridges { "minirun1" }
        delete element ip minirun bridge_pairs { "minirun1" . "minirun1" }
        delete element ip minirun subnets { 10.88.6.0/24 }
    """)
    one = nft.parse_state(nft_listing())
    assert nft.render_teardown_network(NET, one) == "delete table ip minirun\n"
    assert nft.render_teardown_network(NET2, one) == ""   # not there: another network is
    kept = nft.parse_state(nft_listing(user_rules=2))
    assert nft.render_teardown_network(NET, kept) == g("""
        delete element ip minirun bridges { "minirun0" }
        delete element ip minirun bridge_pairs { "minirun0" . "minirun0" }
        delete element ip minirun subnets { 10.88.5.0/24 }
    """)
    assert nft.render_teardown_network(NET, nft.NftState()) == ""


def test_nft_backend_calls_and_oplog(tmp_path):
    seen = []
    oplog.listen(seen.append)
    try:
        r = FakeRunner(nft_answers={"list chain ip filter FORWARD": CommandFailed("No such file or directory")})
        fw = get_firewall("nftables", runner=r, lock_path=tmp_path / "lock")
        fw.setup_network(NET)
        fw.add_container(CID, NET, FWD)
    finally:
        oplog._listeners.remove(seen.append)
    assert [c[1] for c in r.mutations()] == [NFT_SETUP, NFT_ADD]
    assert seen == [f"nft -f - <<'EOF'\n{NFT_SETUP}EOF", f"nft -f - <<'EOF'\n{NFT_ADD}EOF"]


def test_nft_backend_remove_and_reclaim(tmp_path):
    r = FakeRunner(nft_answers={LIST: nft_listing(), LIST_TEXT: nft_text_listing()})
    fw = get_firewall("nftables", runner=r, lock_path=tmp_path / "lock")
    assert fw.container_ids() == {CID} and fw.network_names() == {"minirun"}
    fw.remove_container(CID, NET, FWD)
    fw.purge_container(CID)
    assert [c[1] for c in r.mutations()] == [NFT_REMOVE, NFT_REMOVE]
    r2 = FakeRunner(nft_answers={LIST: CommandFailed("Could not process rule: No such file or directory")})
    fw2 = get_firewall("nftables", runner=r2, lock_path=tmp_path / "lock")
    fw2.remove_container(CID, NET, FWD)   # no table: nothing to do, no error
    fw2.teardown_network(NET)
    assert r2.mutations() == [] and fw2.container_ids() == set()


def test_nft_add_conflict_and_retry(tmp_path):
    exists = CommandFailed("Could not process rule: File exists")
    # our own elements from an earlier attempt: only the missing one is created again
    r = FakeRunner(nft_answers={NFT_ADD: exists, LIST: nft_listing(containers=((CID, FWD[:1]),))})
    get_firewall("nftables", runner=r, lock_path=tmp_path / "l").add_container(CID, NET, FWD)
    assert r.mutations()[-1][1] == nft.render_add_container(CID, NET, FWD[1:])
    # another container's port: refused, naming it
    r = FakeRunner(nft_answers={NFT_ADD: exists, LIST: nft_listing(containers=(("zzz", FWD[:1]),))})
    with pytest.raises(Conflict, match=r"^nft: add container abc123: host port 0.0.0.0:8080/tcp "
                                       r"is already published by zzz$"):
        get_firewall("nftables", runner=r, lock_path=tmp_path / "l").add_container(CID, NET, FWD)


def test_nft_error_is_one_line_naming_the_operation(tmp_path):
    err = ("/dev/stdin:1:1-40: Error: Could not process rule: No such file or directory\n"
           "create element ip minirun ports_tcp { 8080 ... }\n^^^^^^\n")
    r = FakeRunner(nft_answers={NFT_ADD: CommandFailed(first_error_line(err))})
    with pytest.raises(MinirunError) as info:
        get_firewall("nftables", runner=r, lock_path=tmp_path / "l").add_container(CID, NET, FWD)
    assert str(info.value) == "nft: add container abc123: Could not process rule: No such file or directory"


def test_nft_forward_compat_when_iptables_filter_forward_exists(tmp_path):
    r = FakeRunner(nft_answers={"list ruleset": ruleset_listing(
        chains=[("ip", "filter", "FORWARD", "forward", "drop")])})
    get_firewall("nftables", runner=r, lock_path=tmp_path / "l").setup_network(NET)
    restore = [c for c in r.calls if c[0] == "run" and c[1][0] == "iptables-restore"]
    assert restore == [("run", ["iptables-restore", "-w", "--noflush"], IPT_COMPAT)]


def ruleset_listing(chains=(), rules=()) -> str:
    """A `nft -j -t list ruleset` answer: chains as (family, table, name, hook, policy)
    (hook None: a regular chain), rules as (family, table, chain, handle, comment)."""
    objs = [{"metainfo": {"version": "1.0.6"}}]
    for fam, table, name, hook, policy in chains:
        c = {"family": fam, "table": table, "name": name, "handle": 1}
        if hook:
            c.update(type="filter", hook=hook, prio=0, policy=policy)
        objs.append({"chain": c})
    for fam, table, chain, handle, comment in rules:
        r = {"family": fam, "table": table, "chain": chain, "handle": handle, "expr": []}
        if comment:
            r["comment"] = comment
        objs.append({"rule": r})
    return json.dumps({"nftables": objs})


@pytest.fixture(autouse=True)
def no_legacy_tables(monkeypatch, tmp_path):
    """The machine running the unit tests may have legacy iptables tables: not seen here."""
    monkeypatch.setattr(nft.NftablesFirewall, "LEGACY_TABLES", str(tmp_path / "ip_tables_names"))


# -- iptables ------------------------------------------------------------------

IPT_SETUP = g("""
    *raw
    :MINIRUN-PREROUTING - [0:0]
    -A MINIRUN-PREROUTING -d 127.0.0.0/8 ! -i lo -j DROP
    -I PREROUTING 1 -j MINIRUN-PREROUTING
    COMMIT
    *nat
    :MINIRUN-DNAT - [0:0]
    :MINIRUN-POSTROUTING - [0:0]
    -I PREROUTING 1 -m addrtype --dst-type LOCAL -j MINIRUN-DNAT
    -I OUTPUT 1 -m addrtype --dst-type LOCAL -j MINIRUN-DNAT
    -I POSTROUTING 1 -j MINIRUN-POSTROUTING
    -A MINIRUN-POSTROUTING -s 10.88.5.0/24 ! -o minirun0 -m comment --comment "minirun:default:net:minirun" -j MASQUERADE
    -A MINIRUN-POSTROUTING -s 127.0.0.0/8 -o minirun0 -m comment --comment "minirun:default:net:minirun" -j MASQUERADE
    -A MINIRUN-POSTROUTING -s 10.88.5.0/24 -o minirun0 -m conntrack --ctstate DNAT -m comment --comment "minirun:default:net:minirun" -j MASQUERADE
    COMMIT
    *filter
    :MINIRUN-FORWARD - [0:0]
    :MINIRUN-USER - [0:0]
    :MINIRUN-INGRESS - [0:0]
    -A MINIRUN-FORWARD -j MINIRUN-USER
    -A MINIRUN-FORWARD -j MINIRUN-INGRESS
    -I FORWARD 1 -j MINIRUN-FORWARD
    -A MINIRUN-INGRESS -o minirun0 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "minirun:default:net:minirun" -j ACCEPT
    -A MINIRUN-INGRESS -o minirun0 -m conntrack --ctstate DNAT -m comment --comment "minirun:default:net:minirun" -j ACCEPT
    -A MINIRUN-INGRESS -i minirun0 -o minirun0 -m comment --comment "minirun:default:net:minirun" -j ACCEPT
    -A MINIRUN-INGRESS -o minirun0 -m comment --comment "minirun:default:net:minirun" -j DROP
    -A MINIRUN-FORWARD -i minirun0 -m comment --comment "minirun:default:net:minirun" -j ACCEPT
    COMMIT
""")

IPT_ADD = g("""
    *nat
    -A MINIRUN-DNAT -p tcp -m tcp --dport 8080 -m comment --comment "minirun:default:abc123" -j DNAT --to-destination 10.88.5.2:80
    -I MINIRUN-DNAT 1 -d 127.0.0.1/32 -p udp -m udp --dport 5353 -m comment --comment "minirun:default:abc123" -j DNAT --to-destination 10.88.5.2:53
    COMMIT
""")

IPT_REMOVE = g("""
    *nat
    -D MINIRUN-DNAT -p tcp -m tcp --dport 8080 -m comment --comment "minirun:default:abc123" -j DNAT --to-destination 10.88.5.2:80
    -D MINIRUN-DNAT -d 127.0.0.1/32 -p udp -m udp --dport 5353 -m comment --comment "minirun:default:abc123" -j DNAT --to-destination 10.88.5.2:53
    COMMIT
""")

IPT_COMPAT = g("""
    *filter
    :MINIRUN-FORWARD - [0:0]
    -I FORWARD 1 -j MINIRUN-FORWARD
    -A MINIRUN-FORWARD -o minirun0 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "minirun:default:net:minirun" -j ACCEPT
    -A MINIRUN-FORWARD -o minirun0 -m conntrack --ctstate DNAT -m comment --comment "minirun:default:net:minirun" -j ACCEPT
    -A MINIRUN-FORWARD -i minirun0 -m comment --comment "minirun:default:net:minirun" -j ACCEPT
    COMMIT
""")


def saved_after(*batches: str, user: str = "") -> str:
    """What iptables-save would print after these batches (enough for the parser)."""
    tables: dict[str, list[str]] = {}
    cur = None
    for line in "".join(batches).splitlines():
        if line.startswith("*"):
            cur = tables.setdefault(line[1:], [])
        elif line.startswith(":"):
            cur.insert(0, line)
        elif line.startswith("-I "):
            chain, _, rest = line[3:].split(" ", 2)
            cur.append(f"-A {chain} {rest}")
        elif line.startswith("-A "):
            cur.append(line)
    if user:
        tables["filter"].append(f"-A MINIRUN-USER {user}")
    return "".join(f"*{t}\n" + "\n".join(ls) + "\nCOMMIT\n" for t, ls in tables.items())


def test_ipt_render_setup_network_fresh_and_idempotent():
    assert ipt.render_setup_network(NET) == IPT_SETUP
    assert ipt.render_setup_network(NET, saved_after(IPT_SETUP)) == ""


def test_ipt_render_second_network_adds_only_its_rules():
    text = ipt.render_setup_network(NET2, saved_after(IPT_SETUP))
    assert text == g("""
        *nat
        -A MINIRUN-POSTROUTING -s 10.88.6.0/24 ! -o minirun1 -m comment --comment "minirun:default:net:other" -j MASQUERADE
        -A MINIRUN-POSTROUTING -s 127.0.0.0/8 -o minirun1 -m comment --comment "minirun:default:net:other" -j MASQUERADE
        -A MINIRUN-POSTROUTING -s 10.88.6.0/24 -o minirun1 -m conntrack --ctstate DNAT -m comment --comment "minirun:default:net:other" -j MASQUERADE
        COMMIT
        *filter
        -A MINIRUN-INGRESS -o minirun1 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "minirun:default:net:other" -j ACCEPT
        -A MINIRUN-INGRESS -o minirun1 -m conntrack --ctstate DNAT -m comment --comment "minirun:default:net:other" -j ACCEPT
        -A MINIRUN-INGRESS -i minirun1 -o minirun1 -m comment --comment "minirun:default:net:other" -j ACCEPT
        -A MINIRUN-INGRESS -o minirun1 -m comment --comment "minirun:default:net:other" -j DROP
        -A MINIRUN-FORWARD -i minirun1 -m comment --comment "minirun:default:net:other" -j ACCEPT
        COMMIT
    """)
    both = saved_after(IPT_SETUP, text)
    assert ipt.render_teardown_network(NET2, both) == text.replace("-A ", "-D ")


def test_ipt_render_teardown_last_network_and_user_chain():
    saved = saved_after(IPT_SETUP)
    assert ipt.render_teardown_network(NET, saved) == g("""
        *raw
        -D PREROUTING -j MINIRUN-PREROUTING
        -F MINIRUN-PREROUTING
        -X MINIRUN-PREROUTING
        COMMIT
        *nat
        -D PREROUTING -m addrtype --dst-type LOCAL -j MINIRUN-DNAT
        -D OUTPUT -m addrtype --dst-type LOCAL -j MINIRUN-DNAT
        -D POSTROUTING -j MINIRUN-POSTROUTING
        -F MINIRUN-DNAT
        -F MINIRUN-POSTROUTING
        -X MINIRUN-DNAT
        -X MINIRUN-POSTROUTING
        COMMIT
        *filter
        -D FORWARD -j MINIRUN-FORWARD
        -F MINIRUN-FORWARD
        -F MINIRUN-USER
        -F MINIRUN-INGRESS
        -X MINIRUN-FORWARD
        -X MINIRUN-USER
        -X MINIRUN-INGRESS
        COMMIT
    """)
    # the admin's MINIRUN-USER has a rule: only the network's own rules go
    kept = ipt.render_teardown_network(NET, saved_after(IPT_SETUP, user="-i eth0 -j DROP"))
    assert not [l for l in kept.splitlines() if l.startswith(("-X", "-F"))]
    assert "MINIRUN-USER" not in kept
    assert kept.count("-D MINIRUN-") == 8
    assert ipt.render_teardown_network(NET, "") == ""


def test_ipt_render_containers():
    assert ipt.render_add_container(CID, NET, FWD) == IPT_ADD
    assert ipt.render_remove_container(CID, NET, FWD) == IPT_REMOVE
    saved = saved_after(IPT_SETUP, IPT_ADD)
    assert ipt.render_add_container(CID, NET, FWD, saved) == ""          # already there
    assert ipt.render_remove_container(CID, NET, FWD, saved) == IPT_REMOVE
    assert ipt.render_remove_container(CID, NET, FWD, saved_after(IPT_SETUP)) == ""
    assert ipt.render_remove_container("zzz", NET, FWD, saved) == ""
    purge = ipt.render_purge_container(CID, saved)
    assert sorted(purge.splitlines()) == sorted(IPT_REMOVE.splitlines())
    with pytest.raises(Conflict, match="host port 0.0.0.0:8080/tcp is already published by abc123"):
        ipt.render_add_container("zzz", NET, FWD[:1], saved)


def test_ipt_render_forward_compat():
    assert ipt.render_forward_compat_setup(NET, "") == IPT_COMPAT
    saved = saved_after(IPT_COMPAT)
    assert ipt.render_forward_compat_setup(NET, saved) == ""
    assert ipt.render_forward_compat_teardown(NET, saved) == g("""
        *filter
        -D FORWARD -j MINIRUN-FORWARD
        -F MINIRUN-FORWARD
        -X MINIRUN-FORWARD
        COMMIT
    """)
    two = saved_after(IPT_COMPAT, ipt.render_forward_compat_setup(NET2, saved))
    assert ipt.render_forward_compat_teardown(NET, two) == \
        "*filter\n" + "".join(r.replace("-A", "-D", 1) + "\n" for r in ipt.compat_rules(NET)) + "COMMIT\n"
    assert ipt.render_forward_compat_teardown(NET, "") == ""


def test_ipt_backend_calls(tmp_path):
    seen = []
    oplog.listen(seen.append)
    try:
        r = FakeRunner(run_answers={"iptables-save": [saved_after(), saved_after(IPT_SETUP),
                                                      saved_after(IPT_SETUP, IPT_ADD)]})
        fw = get_firewall("iptables", runner=r, lock_path=tmp_path / "l")
        fw.setup_network(NET)
        fw.add_container(CID, NET, FWD)
        assert fw.container_ids() == {CID} and fw.network_names() == {"minirun"}
        fw.remove_container(CID, NET, FWD)
    finally:
        oplog._listeners.remove(seen.append)
    assert [c[2] for c in r.mutations()] == [IPT_SETUP, IPT_ADD, IPT_REMOVE]
    assert seen[0] == f"iptables-restore -w --noflush <<'EOF'\n{IPT_SETUP}EOF"


def test_ipt_error_message(tmp_path):
    r = FakeRunner(run_answers={"iptables-restore": CommandFailed(first_error_line(
        "iptables-restore v1.8.9 (nf_tables): Chain 'MINIRUN-DNAT' does not exist\n"
        "Error occurred at line: 2\n"))})
    with pytest.raises(MinirunError) as info:
        get_firewall("iptables", runner=r, lock_path=tmp_path / "l").add_container(CID, NET, FWD)
    assert str(info.value) == ("iptables-restore: add container abc123: "
                               "Chain 'MINIRUN-DNAT' does not exist")


# -- input validation ------------------------------------------------------------

@pytest.mark.parametrize("bad", ["a;b", 'x" drop', "", "a b", "x" * 65])
def test_unsafe_names_are_refused(bad):
    with pytest.raises(UsageError):
        NetworkInfo(bad, "br0", "10.0.0.0/24", "10.0.0.1")
    with pytest.raises(UsageError):
        nft.render_add_container(bad, NET, FWD)
    with pytest.raises(UsageError):
        ipt.render_add_container(bad, NET, FWD)


@pytest.mark.parametrize("kw", [dict(proto="sctp"), dict(host_port=0), dict(container_port=70000),
                                dict(container_ip="10.0.0"), dict(host_ip="::1")])
def test_bad_forwards_are_refused(kw):
    args = dict(proto="tcp", host_ip=None, host_port=80, container_ip="10.0.0.2", container_port=80)
    args.update(kw)
    with pytest.raises(UsageError):
        PortForward(**args)


def test_bad_networks_are_refused():
    with pytest.raises(UsageError):
        NetworkInfo("n", "bridge-name-too-long", "10.0.0.0/24", "10.0.0.1")
    with pytest.raises(UsageError):
        NetworkInfo("n", "br0", "10.0.0.0/24", "10.0.1.1")
    with pytest.raises(UsageError):
        NetworkInfo("n", "br0", "10.0.0.1/24", "10.0.0.1")


def test_unknown_backend():
    with pytest.raises(UsageError):
        get_firewall("pf")


# -- owners (several state roots share the table and chains) ----------------------

def test_owner_tags_are_checked():
    for bad in ("", "Upper", "a:b", "x" * 17, "a b"):
        with pytest.raises(UsageError):
            get_firewall("nftables", runner=FakeRunner(), owner=bad)
    assert get_firewall("iptables", runner=FakeRunner(), owner="r0").owner == "r0"


def test_nft_owner_tags_and_teardown_keeps_other_owners():
    assert 'comment "r2:minirun"' in nft.render_setup_network(NET, owner="r2")
    assert 'comment "r2:abc123" :' in nft.render_add_container(CID, NET, FWD, owner="r2")
    # another owner's network in the table: only ours goes, the table stays
    both = nft.parse_state(nft_listing(nets=(NET, (NET2, "b:other")), containers=()))
    assert nft.render_teardown_network(NET, both) == g("""
        delete element ip minirun bridges { "minirun0" }
        delete element ip minirun bridge_pairs { "minirun0" . "minirun0" }
        delete element ip minirun subnets { 10.88.5.0/24 }
    """)
    assert nft.render_teardown_network(NET2, both) == ""        # b's, not ours
    assert nft.render_teardown_network(NET2, both, owner="b") == g("""
        delete element ip minirun bridges { "minirun1" }
        delete element ip minirun bridge_pairs { "minirun1" . "minirun1" }
        delete element ip minirun subnets { 10.88.6.0/24 }
    """)
    # another owner's published port keeps the table; our own leftovers do not
    theirs = nft.parse_state(nft_listing(containers=(("b:zzz", FWD[:1]),)))
    assert nft.render_teardown_network(NET, theirs).startswith("delete element")
    ours = nft.parse_state(nft_listing(containers=((CID, FWD),)))
    assert nft.render_teardown_network(NET, ours) == "delete table ip minirun\n"
    # an untagged (old) element is someone else's
    old = nft.parse_state(nft_listing(containers=(("zzz", FWD[:1]),)).replace('"default:zzz"', '"zzz"'))
    assert nft.render_teardown_network(NET, old).startswith("delete element")
    # removal and purge touch only our tag
    mixed = nft.parse_state(nft_listing(containers=(("b:" + CID, FWD[:1]), (CID, FWD[1:]))))
    assert nft.render_remove_container(CID, NET, FWD, mixed) == \
        "delete element ip minirun hostports_udp { 127.0.0.1 . 5353 }\n"
    assert nft.render_purge_container(CID, mixed, owner="b") == \
        "delete element ip minirun ports_tcp { 8080 }\n"


def test_nft_backend_lists_only_its_owner(tmp_path):
    listing = nft_listing(nets=(NET, (NET2, "b:other")),
                          containers=((CID, FWD[:1]), ("b:zzz", FWD[1:])))
    a = get_firewall("nftables", runner=FakeRunner(nft_answers={LIST: listing}), lock_path=tmp_path / "l")
    b = get_firewall("nftables", runner=FakeRunner(nft_answers={LIST: listing}),
                     lock_path=tmp_path / "l", owner="b")
    assert a.container_ids() == {CID} and a.network_names() == {"minirun"}
    assert b.container_ids() == {"zzz"} and b.network_names() == {"other"}


def test_conflict_names_the_other_owner(tmp_path):
    exists = CommandFailed("Could not process rule: File exists")
    r = FakeRunner(nft_answers={NFT_ADD: exists, LIST: nft_listing(containers=(("b:zzz", FWD[:1]),))})
    with pytest.raises(Conflict, match=r"published by zzz \(minirun state root 'b'\)$"):
        get_firewall("nftables", runner=r, lock_path=tmp_path / "l").add_container(CID, NET, FWD)
    saved = saved_after(IPT_SETUP, ipt.render_add_container("zzz", NET, FWD[:1], owner="b"))
    with pytest.raises(Conflict, match=r"published by zzz \(minirun state root 'b'\)$"):
        ipt.render_add_container(CID, NET, FWD[:1], saved)
    # the same id under another owner is another container
    with pytest.raises(Conflict):
        ipt.render_add_container("zzz", NET, FWD[:1], saved)
    assert ipt.render_add_container("zzz", NET, FWD[:1], saved, owner="b") == ""


def test_ipt_owner_tags_and_teardown_keeps_other_owners():
    mine = ipt.render_setup_network(NET, owner="a")
    assert '"minirun:a:net:minirun"' in mine and '"minirun:default:' not in mine
    theirs = ipt.render_setup_network(NET2, saved_after(mine), owner="b")
    both = saved_after(mine, theirs)
    down = ipt.render_teardown_network(NET, both, owner="a")
    assert not [l for l in down.splitlines() if l.startswith(("-X", "-F"))]
    assert "minirun:b:" not in down
    assert down.count("-D MINIRUN-") == 8
    # another owner's DNAT rule alone keeps the chains; our own leftovers do not
    dnat_b = ipt.render_add_container("zzz", NET, FWD[:1], owner="b")
    assert "-X MINIRUN-DNAT" not in ipt.render_teardown_network(NET, saved_after(mine, dnat_b), owner="a")
    dnat_a = ipt.render_add_container("zzz", NET, FWD[:1], owner="a")
    assert "-X MINIRUN-DNAT" in ipt.render_teardown_network(NET, saved_after(mine, dnat_a), owner="a")
    assert ipt.render_purge_container("zzz", saved_after(mine, dnat_b), owner="a") == ""


def test_ipt_backend_lists_only_its_owner(tmp_path):
    saved = saved_after(ipt.render_setup_network(NET, owner="a"),
                        ipt.render_add_container("c1", NET, FWD[:1], owner="a"),
                        ipt.render_add_container("c2", NET, FWD[1:], owner="b"),
                        ipt.render_setup_network(NET2, saved_after(IPT_SETUP), owner="b"))
    a = get_firewall("iptables", runner=FakeRunner(run_answers={"iptables-save": saved}),
                     lock_path=tmp_path / "l", owner="a")
    assert a.container_ids() == {"c1"} and a.network_names() == {"minirun"}


# -- flushed firewalls: intact() and restore() -------------------------------------

def nft_ruleset(base=True, flushed=False, extra_chains=(), extra_rules=()) -> str:
    """A terse ruleset listing holding minirun's table (its rules gone if `flushed`)."""
    chains = [("ip", "minirun", c, nft.HOOKS.get(c), "accept") for c in nft.BASE_CHAINS] if base else []
    rules = [("ip", "minirun", c, 100 + i, None) for c, n in nft.RULE_COUNTS.items()
             for i in range(n)] if base and not flushed else []
    return ruleset_listing(chains=chains + list(extra_chains), rules=rules + list(extra_rules))


BRIDGES = 'list set ip minirun bridges'


def test_nft_base_intact():
    from minirun.network.firewall import foreign
    assert nft.base_intact(foreign.parse_ruleset(nft_ruleset()))
    assert not nft.base_intact(foreign.parse_ruleset(nft_ruleset(flushed=True)))   # flush table
    assert not nft.base_intact(foreign.parse_ruleset(nft_ruleset(base=False)))     # flush ruleset
    assert not nft.base_intact(foreign.parse_ruleset(""))


def test_nft_intact_and_restore_with_a_fake(tmp_path):
    lock = tmp_path / "l"
    ok = FakeRunner(nft_answers={"list ruleset": nft_ruleset(), BRIDGES: nft_listing(containers=())},
                    tools=())
    assert get_firewall("nftables", runner=ok, lock_path=lock).intact([NET])
    assert not get_firewall("nftables", runner=ok, lock_path=lock, owner="b").intact([NET])
    assert not get_firewall("nftables", runner=ok, lock_path=lock).intact([NET, NET2])
    assert get_firewall("nftables", runner=ok, lock_path=lock).intact([])
    flushed = FakeRunner(nft_answers={"list ruleset": nft_ruleset(flushed=True),
                                      BRIDGES: nft_listing(containers=())}, tools=())
    assert not get_firewall("nftables", runner=flushed, lock_path=lock).intact([NET])
    # restore after `flush table`: the setup again; the elements still there are ours: fine
    exists = CommandFailed("Could not process rule: File exists")
    r = FakeRunner(nft_answers={"list ruleset": nft_ruleset(flushed=True), NFT_ADD: exists,
                                LIST: nft_listing()}, tools=())
    get_firewall("nftables", runner=r, lock_path=lock).restore(NET, {CID: FWD})
    assert [c[1] for c in r.mutations()] == [NFT_SETUP, NFT_ADD]
    # ...another owner's: a Conflict
    r = FakeRunner(nft_answers={"list ruleset": nft_ruleset(flushed=True), NFT_ADD: exists,
                                LIST: nft_listing(containers=(("b:" + CID, FWD),))}, tools=())
    with pytest.raises(Conflict, match="restore network minirun: host port"):
        get_firewall("nftables", runner=r, lock_path=lock).restore(NET, {CID: FWD})


def test_ipt_intact_and_restore_after_flush():
    saved = saved_after(IPT_SETUP, IPT_ADD)
    assert ipt.is_intact(saved, [NET]) and ipt.is_intact(saved, [])
    assert not ipt.is_intact(saved, [NET2]) and not ipt.is_intact(saved, [NET], owner="b")
    # `iptables -F; iptables -t nat -F; iptables -t raw -F`: the chains stay, empty
    flushed = "".join(l + "\n" for l in saved.splitlines()
                      if not l.startswith("-A"))
    assert not ipt.is_intact(flushed, [NET])
    assert ipt.render_restore(NET, {CID: FWD}, flushed) == g("""
        *raw
        -I MINIRUN-PREROUTING 1 -d 127.0.0.0/8 ! -i lo -j DROP
        -I PREROUTING 1 -j MINIRUN-PREROUTING
        COMMIT
        *nat
        -I PREROUTING 1 -m addrtype --dst-type LOCAL -j MINIRUN-DNAT
        -I OUTPUT 1 -m addrtype --dst-type LOCAL -j MINIRUN-DNAT
        -I POSTROUTING 1 -j MINIRUN-POSTROUTING
        -A MINIRUN-POSTROUTING -s 10.88.5.0/24 ! -o minirun0 -m comment --comment "minirun:default:net:minirun" -j MASQUERADE
        -A MINIRUN-POSTROUTING -s 127.0.0.0/8 -o minirun0 -m comment --comment "minirun:default:net:minirun" -j MASQUERADE
        -A MINIRUN-POSTROUTING -s 10.88.5.0/24 -o minirun0 -m conntrack --ctstate DNAT -m comment --comment "minirun:default:net:minirun" -j MASQUERADE
        -A MINIRUN-DNAT -p tcp -m tcp --dport 8080 -m comment --comment "minirun:default:abc123" -j DNAT --to-destination 10.88.5.2:80
        -I MINIRUN-DNAT 1 -d 127.0.0.1/32 -p udp -m udp --dport 5353 -m comment --comment "minirun:default:abc123" -j DNAT --to-destination 10.88.5.2:53
        COMMIT
        *filter
        -I MINIRUN-FORWARD 1 -j MINIRUN-USER
        -I MINIRUN-FORWARD 2 -j MINIRUN-INGRESS
        -I FORWARD 1 -j MINIRUN-FORWARD
        -A MINIRUN-INGRESS -o minirun0 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "minirun:default:net:minirun" -j ACCEPT
        -A MINIRUN-INGRESS -o minirun0 -m conntrack --ctstate DNAT -m comment --comment "minirun:default:net:minirun" -j ACCEPT
        -A MINIRUN-INGRESS -i minirun0 -o minirun0 -m comment --comment "minirun:default:net:minirun" -j ACCEPT
        -A MINIRUN-INGRESS -o minirun0 -m comment --comment "minirun:default:net:minirun" -j DROP
        -A MINIRUN-FORWARD -i minirun0 -m comment --comment "minirun:default:net:minirun" -j ACCEPT
        COMMIT
    """)
    # nothing flushed: nothing to do; nothing at all (`nft flush ruleset`): everything
    assert ipt.render_restore(NET, {CID: FWD}, saved) == ""
    assert ipt.render_restore(NET, {CID: FWD}, "") == IPT_SETUP.replace(
        "COMMIT\n*filter", IPT_ADD.split("\n", 1)[1].replace("COMMIT\n", "") + "COMMIT\n*filter")


def test_ipt_backend_intact_and_restore(tmp_path):
    r = FakeRunner(run_answers={"iptables-save": saved_after(IPT_SETUP)})
    fw = get_firewall("iptables", runner=r, lock_path=tmp_path / "l")
    assert fw.intact([NET]) and not fw.intact([NET2])
    fw.restore(NET, {})
    assert r.mutations() == []          # intact: nothing to put back
    fw.restore(NET2, {})
    assert len(r.mutations()) == 1


# -- foreign forward chains with policy drop ----------------------------------------

def test_foreign_drop_chains():
    from minirun.network.firewall import foreign
    rs = foreign.parse_ruleset(nft_ruleset(extra_chains=[
        ("inet", "filter", "forward", "forward", "drop"),
        ("ip", "filter", "FORWARD", "forward", "drop"),
        ("ip", "fw", "fwd_accept", "forward", "accept"),
        ("ip", "fw", "in", "input", "drop"),
        ("bridge", "br", "forward", "forward", "drop"),
        ("ip", "fw", "helper", None, None)]))
    assert foreign.drop_chains(rs, iptables_tools=True) == [("inet", "filter", "forward")]
    assert foreign.drop_chains(rs, iptables_tools=False) == [("inet", "filter", "forward"),
                                                             ("ip", "filter", "FORWARD")]
    assert foreign.render_setup(NET, "a", rs, True) == g("""
        insert rule inet filter forward iifname "minirun0" accept comment "minirun:a:net:minirun"
        insert rule inet filter forward oifname "minirun0" ct status dnat accept comment "minirun:a:net:minirun"
        insert rule inet filter forward oifname "minirun0" ct state established,related accept comment "minirun:a:net:minirun"
    """)
    assert not foreign.intact(rs, [NET], "a", True)
    rules = [("inet", "filter", "forward", 7 + i, "minirun:a:net:minirun") for i in range(3)]
    rules.append(("inet", "filter", "forward", 20, "minirun:b:net:minirun"))   # b's: not ours
    rs2 = foreign.parse_ruleset(nft_ruleset(extra_chains=[
        ("inet", "filter", "forward", "forward", "drop")], extra_rules=rules))
    assert foreign.intact(rs2, [NET], "a", True) and not foreign.intact(rs2, [NET], "c", True)
    assert foreign.render_setup(NET, "a", rs2, True) == ""
    assert foreign.render_teardown(NET, "a", rs2) == g("""
        delete rule inet filter forward handle 7
        delete rule inet filter forward handle 8
        delete rule inet filter forward handle 9
    """)
    bad = foreign.parse_ruleset(ruleset_listing(chains=[("inet", "we ird", "f", "forward", "drop")]))
    with pytest.raises(MinirunError, match="unusual name"):
        foreign.render_setup(NET, "a", bad, True)


def test_nft_backend_opens_a_foreign_drop_chain(tmp_path):
    drop = [("inet", "filter", "forward", "forward", "drop")]
    r = FakeRunner(nft_answers={"list ruleset": nft_ruleset(base=False, extra_chains=drop)}, tools=())
    fw = get_firewall("nftables", runner=r, lock_path=tmp_path / "l")
    fw.setup_network(NET)
    [(_, script, _)] = r.mutations()
    assert script.startswith(NFT_SETUP) and script.count("insert rule inet filter forward") == 3
    mine = [("inet", "filter", "forward", 7 + i, "minirun:default:net:minirun") for i in range(3)]
    r = FakeRunner(nft_answers={"list ruleset": nft_ruleset(extra_chains=drop, extra_rules=mine),
                                LIST: nft_listing(containers=())}, tools=())
    get_firewall("nftables", runner=r, lock_path=tmp_path / "l").teardown_network(NET)
    assert [c[1] for c in r.mutations()] == ["delete table ip minirun\n" + "".join(
        f"delete rule inet filter forward handle {h}\n" for h in (7, 8, 9))]


def test_iptables_backend_opens_a_foreign_drop_chain(tmp_path):
    drop = [("inet", "filter", "forward", "forward", "drop"), ("ip", "filter", "FORWARD", "forward", "drop")]
    r = FakeRunner(nft_answers={"list ruleset": ruleset_listing(chains=drop)},
                   run_answers={"iptables-save": ""},
                   tools=("iptables-save", "iptables-restore", "libnftables"))
    get_firewall("iptables", runner=r, lock_path=tmp_path / "l").setup_network(NET)
    nft_scripts = [c[1] for c in r.mutations() if c[0] == "nft"]
    assert len(nft_scripts) == 1 and nft_scripts[0].count("insert rule inet filter forward") == 3
    assert "ip filter" not in nft_scripts[0]   # iptables' own table: its rules do it


# -- iptables-legacy tables under the nftables backend ----------------------------------

LEGACY_DROP = g("""
    *filter
    :INPUT ACCEPT [0:0]
    :FORWARD DROP [0:0]
    :OUTPUT ACCEPT [0:0]
    -A FORWARD -j DOCKER-USER
    COMMIT
""")


def test_nft_legacy_compat(tmp_path, monkeypatch):
    names = tmp_path / "ip_tables_names"
    names.write_text("nat\nfilter\n")
    monkeypatch.setattr(nft.NftablesFirewall, "LEGACY_TABLES", str(names))
    legacy = ("iptables-legacy-save", "iptables-legacy-restore")
    r = FakeRunner(run_answers={"iptables-legacy-save": LEGACY_DROP}, tools=legacy)
    get_firewall("nftables", runner=r, lock_path=tmp_path / "l").setup_network(NET)
    restores = [c for c in r.calls if c[0] == "run" and c[1][0] == "iptables-legacy-restore"]
    assert restores == [("run", ["iptables-legacy-restore", "-w", "--noflush"], IPT_COMPAT)]
    # teardown takes them away
    r = FakeRunner(run_answers={"iptables-legacy-save": saved_after(LEGACY_DROP, IPT_COMPAT)},
                   tools=legacy)
    get_firewall("nftables", runner=r, lock_path=tmp_path / "l").teardown_network(NET)
    restores = [c[2] for c in r.calls if c[0] == "run" and c[1][0] == "iptables-legacy-restore"]
    assert restores == ["*filter\n-D FORWARD -j MINIRUN-FORWARD\n-F MINIRUN-FORWARD\n"
                        "-X MINIRUN-FORWARD\nCOMMIT\n"]
    # an ACCEPT policy and no rules: nothing to open
    r = FakeRunner(run_answers={"iptables-legacy-save": LEGACY_DROP.replace(
        "FORWARD DROP", "FORWARD ACCEPT").replace("-A FORWARD -j DOCKER-USER\n", "")}, tools=legacy)
    get_firewall("nftables", runner=r, lock_path=tmp_path / "l").setup_network(NET)
    assert not [c for c in r.calls if c[0] == "run" and c[1][0] == "iptables-legacy-restore"]
    # legacy tables but no tools to see them: one line saying what to do
    r = FakeRunner(tools=())
    with pytest.raises(MinirunError, match=r"^nft: set up network minirun: .*iptables-legacy.*"
                                           r"apt-get install iptables$"):
        get_firewall("nftables", runner=r, lock_path=tmp_path / "l").setup_network(NET)


# -- missing tools, module structure --------------------------------------------------

def test_check_available():
    with pytest.raises(UsageError, match="--firewall iptables needs iptables-save and iptables-restore"):
        get_firewall("iptables", runner=FakeRunner(tools=("iptables-save",))).check_available()
    get_firewall("iptables", runner=FakeRunner()).check_available()
    with pytest.raises(UsageError, match="--firewall nftables needs"):
        get_firewall("nftables", runner=FakeRunner(tools=())).check_available()
    get_firewall("nftables", runner=FakeRunner(tools=("libnftables",))).check_available()
    get_firewall("nftables", runner=FakeRunner(tools=("nft",))).check_available()


def test_no_import_cycle():
    import subprocess
    import sys
    for first in ("_libnft", "base", "failure", "nftables", "iptables", "foreign"):
        code = (f"import minirun.network.firewall.{first}; "
                "from minirun.network.firewall import get_firewall, NetworkInfo, PortForward")
        assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    import ast
    import pathlib
    import minirun.network.firewall.base as base
    tree = ast.parse(pathlib.Path(base.__file__).read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not any("_libnft" in ast.dump(n) for n in top)
    assert CommandFailed is __import__("minirun.network.firewall.failure",
                                       fromlist=["x"]).CommandFailed


# -- routed and nat-unprotected networks (issue 8) ------------------------------

ROUTED = NetworkInfo("lesson", "v-net-0", "192.168.15.0/24", "192.168.15.5", "routed")
OPEN = NetworkInfo("open", "mr-open", "10.88.7.0/24", "10.88.7.1", "nat-unprotected")
RFWD = [PortForward("tcp", None, 8080, "192.168.15.2", 80),
        PortForward("tcp", None, 8081, "192.168.15.2", 80),        # same container port
        PortForward("udp", "127.0.0.1", 5353, "192.168.15.2", 53),  # host only: not routed
        PortForward("udp", "192.0.2.9", 5354, "192.168.15.2", 54)]


def test_gateway_mode_is_checked():
    with pytest.raises(UsageError):
        NetworkInfo("x", "br-x", "10.1.0.0/24", "10.1.0.1", "isolated")


def test_nft_routed_network_is_not_masqueraded():
    text = nft.render_setup_network(ROUTED)
    assert 'add element ip minirun routed_subnets { 192.168.15.0/24 comment "default:lesson" }' \
        in text
    assert "add element ip minirun subnets" not in text and "open_bridges {" not in \
        text.split("add element", 1)[1]
    text = nft.render_setup_network(OPEN)
    assert 'add element ip minirun subnets { 10.88.7.0/24 comment "default:open" }' in text
    assert 'add element ip minirun open_bridges { "mr-open" comment "default:open" }' in text


def test_nft_routed_ports_render_and_remove():
    assert nft.render_add_routed(CID, ROUTED, RFWD) == g("""
        add element ip minirun routed_tcp { 192.168.15.2 . 80 comment "default:abc123" }
        add element ip minirun routed_udp { 192.168.15.2 . 54 comment "default:abc123" }
    """)
    assert nft.render_add_routed(CID, NET, FWD) == ""  # a NAT network opens nothing
    state = nft.NftState(True, {"routed_tcp": [nft.Element("192.168.15.2 . 80", "default:abc123"),
                                               nft.Element("192.168.15.3 . 80", "default:other")]})
    # whatever mode the caller believes: the container's tagged elements go
    assert nft.render_remove_container(CID, NET, [], state) == \
        "delete element ip minirun routed_tcp { 192.168.15.2 . 80 }\n"
    assert "routed_tcp" in nft.render_purge_container(CID, state)
    assert nft.NftState(True, state.elements).containers() == {CID, "other"}


def test_nft_teardown_removes_every_element_of_the_network_whatever_its_mode():
    state = nft.NftState(True, {
        "bridges": [nft.Element('"mr-open"', "default:open"), nft.Element('"x"', "default:x")],
        "open_bridges": [nft.Element('"mr-open"', "default:open")],
        "subnets": [nft.Element("10.88.7.0/24", "default:open")]})
    text = nft.render_teardown_network(NetworkInfo("open", "mr-open", "10.88.7.0/24",
                                                   "10.88.7.1"), state)
    assert text == g("""
        delete element ip minirun bridges { "mr-open" }
        delete element ip minirun subnets { 10.88.7.0/24 }
        delete element ip minirun open_bridges { "mr-open" }
    """)


def test_ipt_routed_network_rules():
    rules = ipt.network_rules(ROUTED)
    assert not any("! -o v-net-0" in r for r in rules["nat"])  # no egress masquerade
    assert len(rules["nat"]) == 2
    assert ipt.routed_rules(CID, ROUTED, RFWD) == [
        '-A MINIRUN-INGRESS -d 192.168.15.2/32 -o v-net-0 -p tcp -m tcp --dport 80 '
        '-m comment --comment "minirun:default:abc123" -j ACCEPT',
        '-A MINIRUN-INGRESS -d 192.168.15.2/32 -o v-net-0 -p udp -m udp --dport 54 '
        '-m comment --comment "minirun:default:abc123" -j ACCEPT']
    text = ipt.render_add_container(CID, ROUTED, RFWD[:1])
    assert "*filter\n-I MINIRUN-INGRESS 1 -d 192.168.15.2/32" in text
    saved = "*filter\n:MINIRUN-INGRESS - [0:0]\n" + ipt.routed_rules(CID, ROUTED, RFWD)[0] + \
        "\nCOMMIT\n"
    assert "*filter" not in ipt.render_add_container(CID, ROUTED, RFWD[:1], saved)
    removed = ipt.render_remove_container(CID, NET, [], saved)  # mode unknown: by tag
    assert removed == "*filter\n-D" + ipt.routed_rules(CID, ROUTED, RFWD)[0][2:] + "\nCOMMIT\n"


def test_ipt_nat_unprotected_accepts_before_the_drop():
    filt = ipt.network_rules(OPEN)["filter"]
    accept = '-A MINIRUN-INGRESS -o mr-open -m comment --comment "minirun:default:net:open" -j ACCEPT'
    assert filt.index(accept) == filt.index(accept.replace("ACCEPT", "DROP")) - 1
    assert any("! -o mr-open" in r for r in ipt.network_rules(OPEN)["nat"])


def test_compat_rules_open_a_routed_bridge():
    assert ipt.compat_rules(ROUTED) == [
        '-A MINIRUN-FORWARD -o v-net-0 -m comment --comment "minirun:default:net:lesson" -j ACCEPT',
        '-A MINIRUN-FORWARD -i v-net-0 -m comment --comment "minirun:default:net:lesson" -j ACCEPT']
