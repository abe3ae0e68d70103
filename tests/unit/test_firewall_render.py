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

    def nft(self, script, *, json=False):
        self.calls.append(("nft", script, json))
        return self._answer(self.nft_answers.get(script, ""))

    def run(self, argv, input=None):
        self.calls.append(("run", list(argv), input))
        return self._answer(self.run_answers.get(argv[0], ""))

    def available(self, tool):
        return tool in self.tools

    def mutations(self):
        return [c for c in self.calls if (c[0] == "nft" and not c[2]) or
                (c[0] == "run" and c[1][0] == "iptables-restore")]


# -- nftables ------------------------------------------------------------------

NFT_SETUP = g("""
    add table ip minirun
    add set ip minirun bridges { type ifname; }
    add set ip minirun bridge_pairs { type ifname . ifname; }
    add set ip minirun subnets { type ipv4_addr; flags interval; }
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
    add rule ip minirun forward jump user
    add rule ip minirun forward oifname @bridges ct state established,related accept
    add rule ip minirun forward oifname @bridges ct status dnat accept
    add rule ip minirun forward oifname @bridges iifname . oifname != @bridge_pairs drop
    add element ip minirun bridges { "minirun0" comment "minirun" }
    add element ip minirun bridge_pairs { "minirun0" . "minirun0" comment "minirun" }
    add element ip minirun subnets { 10.88.5.0/24 comment "minirun" }
""")

NFT_ADD = g("""
    create element ip minirun ports_tcp { 8080 comment "abc123" : 10.88.5.2 . 80 }
    create element ip minirun hostports_udp { 127.0.0.1 . 5353 comment "abc123" : 10.88.5.2 . 53 }
""")

NFT_REMOVE = g("""
    delete element ip minirun ports_tcp { 8080 }
    delete element ip minirun hostports_udp { 127.0.0.1 . 5353 }
""")


def nft_listing(nets=(NET,), containers=((CID, FWD),), user_rules=0) -> str:
    """A `nft -j list table ip minirun` answer, shaped like nft 1.0.6's."""
    objs = [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "ip", "name": "minirun"}}]
    objs.append({"set": {"name": "bridges", "type": "ifname", "elem": [
        {"elem": {"val": n.bridge, "comment": n.name}} for n in nets]}})
    objs.append({"set": {"name": "bridge_pairs", "type": ["ifname", "ifname"], "elem": [
        {"elem": {"val": {"concat": [n.bridge, n.bridge]}, "comment": n.name}} for n in nets]}})
    objs.append({"set": {"name": "subnets", "type": "ipv4_addr", "flags": ["interval"], "elem": [
        {"elem": {"val": {"prefix": {"addr": n.subnet.split("/")[0],
                                      "len": int(n.subnet.split("/")[1])}}, "comment": n.name}}
        for n in nets]}})
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


def test_nft_render_setup_network():
    assert nft.render_setup_network(NET) == NFT_SETUP


def test_nft_render_add_and_remove_container():
    assert nft.render_add_container(CID, NET, FWD) == NFT_ADD
    assert nft.render_remove_container(CID, NET, FWD) == NFT_REMOVE


def test_nft_parse_state():
    state = nft.parse_state(nft_listing(nets=(NET, NET2)))
    assert state.exists and state.user_rules == 0
    assert state.networks() == {"minirun", "other"}
    assert state.containers() == {CID}
    assert state.find("ports_tcp", "8080") == nft.Element("8080", CID, "10.88.5.2 . 80")
    assert state.find("hostports_udp", "127.0.0.1 . 5353").comment == CID
    assert state.find("bridge_pairs", '"minirun1" . "minirun1"').comment == "other"
    assert state.find("subnets", "10.88.6.0/24").comment == "other"
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
    r = FakeRunner(nft_answers={LIST: nft_listing()})
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
    r = FakeRunner()  # "list chain ip filter FORWARD" succeeds
    get_firewall("nftables", runner=r, lock_path=tmp_path / "l").setup_network(NET)
    restore = [c for c in r.calls if c[0] == "run" and c[1][0] == "iptables-restore"]
    assert restore == [("run", ["iptables-restore", "-w", "--noflush"], IPT_COMPAT)]


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
    -A MINIRUN-POSTROUTING -s 10.88.5.0/24 ! -o minirun0 -m comment --comment "minirun:net:minirun" -j MASQUERADE
    -A MINIRUN-POSTROUTING -s 127.0.0.0/8 -o minirun0 -m comment --comment "minirun:net:minirun" -j MASQUERADE
    -A MINIRUN-POSTROUTING -s 10.88.5.0/24 -o minirun0 -m conntrack --ctstate DNAT -m comment --comment "minirun:net:minirun" -j MASQUERADE
    COMMIT
    *filter
    :MINIRUN-FORWARD - [0:0]
    :MINIRUN-USER - [0:0]
    :MINIRUN-INGRESS - [0:0]
    -A MINIRUN-FORWARD -j MINIRUN-USER
    -A MINIRUN-FORWARD -j MINIRUN-INGRESS
    -I FORWARD 1 -j MINIRUN-FORWARD
    -A MINIRUN-INGRESS -o minirun0 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "minirun:net:minirun" -j ACCEPT
    -A MINIRUN-INGRESS -o minirun0 -m conntrack --ctstate DNAT -m comment --comment "minirun:net:minirun" -j ACCEPT
    -A MINIRUN-INGRESS -i minirun0 -o minirun0 -m comment --comment "minirun:net:minirun" -j ACCEPT
    -A MINIRUN-INGRESS -o minirun0 -m comment --comment "minirun:net:minirun" -j DROP
    -A MINIRUN-FORWARD -i minirun0 -m comment --comment "minirun:net:minirun" -j ACCEPT
    COMMIT
""")

IPT_ADD = g("""
    *nat
    -A MINIRUN-DNAT -p tcp -m tcp --dport 8080 -m comment --comment "minirun:abc123" -j DNAT --to-destination 10.88.5.2:80
    -I MINIRUN-DNAT 1 -d 127.0.0.1/32 -p udp -m udp --dport 5353 -m comment --comment "minirun:abc123" -j DNAT --to-destination 10.88.5.2:53
    COMMIT
""")

IPT_REMOVE = g("""
    *nat
    -D MINIRUN-DNAT -p tcp -m tcp --dport 8080 -m comment --comment "minirun:abc123" -j DNAT --to-destination 10.88.5.2:80
    -D MINIRUN-DNAT -d 127.0.0.1/32 -p udp -m udp --dport 5353 -m comment --comment "minirun:abc123" -j DNAT --to-destination 10.88.5.2:53
    COMMIT
""")

IPT_COMPAT = g("""
    *filter
    :MINIRUN-FORWARD - [0:0]
    -I FORWARD 1 -j MINIRUN-FORWARD
    -A MINIRUN-FORWARD -o minirun0 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "minirun:net:minirun" -j ACCEPT
    -A MINIRUN-FORWARD -o minirun0 -m conntrack --ctstate DNAT -m comment --comment "minirun:net:minirun" -j ACCEPT
    -A MINIRUN-FORWARD -i minirun0 -m comment --comment "minirun:net:minirun" -j ACCEPT
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
        -A MINIRUN-POSTROUTING -s 10.88.6.0/24 ! -o minirun1 -m comment --comment "minirun:net:other" -j MASQUERADE
        -A MINIRUN-POSTROUTING -s 127.0.0.0/8 -o minirun1 -m comment --comment "minirun:net:other" -j MASQUERADE
        -A MINIRUN-POSTROUTING -s 10.88.6.0/24 -o minirun1 -m conntrack --ctstate DNAT -m comment --comment "minirun:net:other" -j MASQUERADE
        COMMIT
        *filter
        -A MINIRUN-INGRESS -o minirun1 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "minirun:net:other" -j ACCEPT
        -A MINIRUN-INGRESS -o minirun1 -m conntrack --ctstate DNAT -m comment --comment "minirun:net:other" -j ACCEPT
        -A MINIRUN-INGRESS -i minirun1 -o minirun1 -m comment --comment "minirun:net:other" -j ACCEPT
        -A MINIRUN-INGRESS -o minirun1 -m comment --comment "minirun:net:other" -j DROP
        -A MINIRUN-FORWARD -i minirun1 -m comment --comment "minirun:net:other" -j ACCEPT
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
