"""Ownership, flushed firewalls and host firewalls minirun does not manage, applied for
real inside throwaway hosts (tests/harness.py). Traffic only between namespaces of the
test's own, on 10.88.x and 198.51.100.0/24."""
from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Host  # noqa: E402
from test_firewall_apply import host, rules, ruleset  # noqa: E402,F401 (the fixture)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

BACKENDS = ["nftables", "iptables"]

PRELUDE = """
import json, sys
from minirun.errors import Conflict
from minirun.network.firewall import get_firewall, NetworkInfo, PortForward, SystemRunner

class NoIptables(SystemRunner):
    '''A host without the iptables tools.'''
    def available(self, tool):
        return not tool.startswith("iptables") and super().available(tool)

def firewall(owner, backend={backend!r}, runner=None):
    # one lock per owner: separate state roots do not share a lock
    return get_firewall(backend, runner=runner, lock_path={lock!r} + "." + owner, owner=owner)

fw = firewall({owner!r}, runner={runner})
N1 = NetworkInfo("net1", "mrbr1", "10.88.5.0/24", "10.88.5.1")
N2 = NetworkInfo("net2", "mrbr2", "10.88.6.0/24", "10.88.6.1")
FA = [PortForward("tcp", None, 8080, "10.88.5.2", 80),
      PortForward("udp", "127.0.0.1", 5353, "10.88.5.2", 53),
      PortForward("tcp", "127.0.0.1", 8082, "10.88.5.2", 80)]
FB = [PortForward("tcp", None, 8081, "10.88.6.3", 80),
      PortForward("udp", None, 5354, "10.88.6.3", 53)]
"""


def py(host: Host, backend: str, code: str, owner: str = "default", runner: str = "None") -> str:
    script = PRELUDE.format(backend=backend, lock=str(host.dir / "fw.lock"), owner=owner,
                            runner=runner) + textwrap.dedent(code)
    res = host.run([sys.executable, "-c", script])
    assert res.returncode == 0, res.stderr
    return res.stdout


def tagged(host: Host, backend: str) -> list[str]:
    """Every element / rule minirun tagged, one line each: "<set> <key> <comment>" for
    nftables (from the JSON listing, immune to line wrapping), the rule for iptables."""
    if backend == "iptables":
        return sorted(l for l in host.sh("iptables-save").splitlines() if "minirun:" in l)
    res = host.run("nft -j list table ip minirun")
    if res.returncode != 0:
        return []
    out = []
    for obj in json.loads(res.stdout)["nftables"]:
        s = obj.get("set") or obj.get("map")
        for e in (s or {}).get("elem", []):
            e = e[0] if isinstance(e, list) else e
            out.append(f"{s['name']} {json.dumps(e['elem']['val'])} {e['elem'].get('comment')}")
    return sorted(out)


# -- two owners ---------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_two_owners_share_the_table(host, backend):
    before = ruleset(host)
    py(host, backend, "fw.setup_network(N1); fw.add_container('aaaa', N1, FA)", owner="a")
    py(host, backend, "fw.setup_network(N2); fw.add_container('bbbb', N2, FB)", owner="b")
    assert py(host, backend, "print(sorted(fw.network_names()), sorted(fw.container_ids()))",
              owner="a").strip() == "['net1'] ['aaaa']"
    assert py(host, backend, "print(sorted(fw.network_names()), sorted(fw.container_ids()))",
              owner="b").strip() == "['net2'] ['bbbb']"
    # b cannot take a's port, and is told whose it is
    out = py(host, backend, """
        try:
            fw.add_container('cccc', N2, [PortForward("tcp", None, 8080, "10.88.6.9", 80)])
        except Conflict as e:
            print(e)
    """, owner="b")
    assert "8080/tcp is already published by aaaa (minirun state root 'a')" in out
    # a purging "bbbb" or tearing down net2 touches nothing of b's
    py(host, backend, "fw.purge_container('bbbb'); fw.teardown_network(N2)", owner="a")
    assert py(host, backend, "print(sorted(fw.container_ids()))", owner="b").strip() == "['bbbb']"
    b_only = [l for l in tagged(host, backend) if "b:" in l]
    assert len(b_only) == (5 if backend == "nftables" else 10)   # 3 net + 2 ports / 8 + 2
    # a leaves: its last container and network; b's elements and the table stay
    py(host, backend, "fw.remove_last_container('aaaa', N1, FA)", owner="a")
    assert tagged(host, backend) == b_only
    assert py(host, backend, "print(fw.intact([N2]))", owner="b").strip() == "True"
    assert py(host, backend, "print(sorted(fw.network_names()))", owner="a").strip() == "[]"
    py(host, backend, "fw.remove_last_container('bbbb', N2, FB)", owner="b")
    assert rules(host, backend) == []
    if backend == "nftables":
        assert ruleset(host) == before


# -- flushed firewalls --------------------------------------------------------------

FLUSHES = [
    ("nftables", "", "nft flush ruleset"),
    ("nftables", "", "nft flush table ip minirun"),
    # iptables-nft's FORWARD with policy drop: the compatibility jump goes with `iptables -F`
    ("nftables", "iptables -P FORWARD DROP", "iptables -F"),
    ("nftables", "iptables -P FORWARD DROP", "nft flush ruleset"),
    ("iptables", "", "iptables -F; iptables -t nat -F; iptables -t raw -F"),
    ("iptables", "", "iptables -t raw -F"),
    ("iptables", "", "nft flush ruleset"),
]


def everything(host: Host, backend: str) -> list[str]:
    out = sorted(rules(host, backend))
    if backend == "nftables":   # and the compatibility rules in iptables' FORWARD
        out += sorted(l for l in host.sh("iptables-save -t filter").splitlines()
                      if "MINIRUN" in l)
    return out


@pytest.mark.parametrize("backend,prepare,flush", FLUSHES)
def test_intact_and_restore_after_a_flush(host, backend, prepare, flush):
    if prepare:
        host.sh(prepare)
    py(host, backend, "fw.setup_network(N1); fw.setup_network(N2);"
                      "fw.add_container('aaaa', N1, FA); fw.add_container('bbbb', N2, FB)")
    full = everything(host, backend)
    assert py(host, backend, "print(fw.intact([N1, N2]), fw.intact([]))").strip() == "True True"
    host.sh(flush)
    assert py(host, backend, "print(fw.intact([N1, N2]), fw.intact([N1]), fw.intact([N2]))"
              ).strip() == "False False False"
    # restore is idempotent: twice, and once more after a partial restore
    py(host, backend, """
        fw.restore(N1, {'aaaa': FA})
        fw.restore(N1, {'aaaa': FA})
        print(fw.intact([N1]))
        fw.restore(N2, {'bbbb': FB})
    """)
    assert py(host, backend, "print(fw.intact([N1, N2]))").strip() == "True"
    if backend == "nftables" and "ruleset" in flush:
        # iptables' filter table went with the ruleset: no FORWARD left to open
        full = [l for l in full if not l.startswith(("-A", ":"))]
    assert everything(host, backend) == full
    # another owner's container holding a port is a Conflict for restore
    if "ruleset" in flush or "nat" in flush:
        host.sh(flush)
        py(host, backend, "fw.setup_network(N2); fw.add_container('zzzz', N2, FA[:1])", owner="z")
        out = py(host, backend, """
            try:
                fw.restore(N1, {'aaaa': FA})
            except Conflict as e:
                print(e)
        """)
        assert "8080/tcp is already published by zzzz (minirun state root 'z')" in out
        py(host, backend, "fw.remove_last_container('zzzz', N2, FA[:1])", owner="z")
    py(host, backend, "fw.purge_container('aaaa'); fw.purge_container('bbbb');"
                      "fw.teardown_network(N1); fw.teardown_network(N2)")
    assert rules(host, backend) == []


def test_nft_intact_with_big_maps(host):
    """intact() answers from a terse listing (no set elements): right with thousands of
    published ports too. Its cost is measured by scripts/bench, not here."""
    out = py(host, "nftables", """
        fw.setup_network(N1)
        for chunk in range(10):
            fw.add_container(f'c{chunk}', N1, [PortForward('tcp', None, 10000 + chunk * 300 + i,
                                                           '10.88.5.2', 80) for i in range(300)])
        print(fw.intact([N1]))
    """)
    assert out.split() == ["True"]


# -- host firewalls minirun does not manage -------------------------------------------

LAN_SETUP = r"""
set -e
sysctl -qw net.ipv4.ip_forward=1
ip link add mrbr1 type bridge && ip addr add 10.88.5.1/24 dev mrbr1 && ip link set mrbr1 up
ip netns add c1
ip link add vc1 type veth peer name eth0 netns c1
ip link set vc1 master mrbr1 up
ip -n c1 addr add 10.88.5.2/24 dev eth0; ip -n c1 link set eth0 up; ip -n c1 link set lo up
ip -n c1 route add default via 10.88.5.1
ip netns add lan
ip link add vlan type veth peer name eth0 netns lan
ip addr add 198.51.100.1/24 dev vlan && ip link set vlan up
ip -n lan addr add 198.51.100.2/24 dev eth0 && ip -n lan link set eth0 up && ip -n lan link set lo up
mkdir -p {www}/c1 {www}/lan && echo c1 > {www}/c1/index.html && echo lan > {www}/lan/index.html
ip netns exec c1 busybox httpd -p 80 -h {www}/c1
ip netns exec lan busybox httpd -p 80 -h {www}/lan
"""

FOREIGN = {
    "inet": ("nft add table inet filter && nft add chain inet filter forward "
             "'{ type filter hook forward priority 0; policy drop; }'", "inet filter forward"),
    # an nft-made `ip filter FORWARD` on a host without the iptables tools
    "ip-no-iptables": ("nft add table ip filter && nft add chain ip filter FORWARD "
                       "'{ type filter hook forward priority 0; policy drop; }'",
                       "ip filter FORWARD"),
}


def curl(host: Host, where: str, url: str) -> str:
    pre = f"ip netns exec {where} " if where else ""
    return host.run(f"{pre}curl -s -m 2 {url}").stdout.strip()


@pytest.mark.parametrize("backend,kind", [("nftables", "inet"), ("nftables", "ip-no-iptables"),
                                          ("iptables", "inet")])
def test_nft_only_forward_drop_chain(host, backend, kind):
    make, chain = FOREIGN[kind]
    runner = "NoIptables()" if kind == "ip-no-iptables" else "None"
    www = host.dir / "www"
    try:
        host.sh(LAN_SETUP.replace("{www}", str(www)))
        host.sh(make + " && nft add rule " + chain + " iifname vlan accept")
        assert curl(host, "c1", "http://198.51.100.2/") == ""      # the control: dropped
        py(host, backend, "fw.setup_network(N1); fw.setup_network(N1);"
                          "fw.add_container('aaaa', N1, FA)", runner=runner)
        listing = host.sh(f"nft list chain {chain}")
        ours = [l.strip() for l in listing.splitlines() if "minirun:default:net:net1" in l]
        assert len(ours) == 3, listing                             # once, however many setups
        first = [l.strip() for l in listing.splitlines()
                 if ("accept" in l or "drop" in l) and "policy" not in l]
        assert first[:3] == ours                                   # at the top
        assert curl(host, "c1", "http://198.51.100.2/") == "lan"   # egress
        assert curl(host, "lan", "http://198.51.100.1:8080/") == "c1"   # published
        assert curl(host, "lan", "http://10.88.5.2/") == ""        # unpublished: still no way in
        assert py(host, backend, "print(fw.intact([N1]))", runner=runner).strip() == "True"
        host.sh(f"nft flush chain {chain}")                        # someone reloads their rules
        assert py(host, backend, "print(fw.intact([N1]))", runner=runner).strip() == "False"
        py(host, backend, "fw.restore(N1, {'aaaa': FA})", runner=runner)
        assert py(host, backend, "print(fw.intact([N1]))", runner=runner).strip() == "True"
        assert curl(host, "c1", "http://198.51.100.2/") == "lan"
        py(host, backend, "fw.remove_container('aaaa', N1, FA); fw.teardown_network(N1)",
           runner=runner)
        assert "minirun" not in host.sh(f"nft list chain {chain}")
        assert rules(host, backend) == []
        assert curl(host, "c1", "http://198.51.100.2/") == ""
        assert "policy drop" in host.sh(f"nft list chain {chain}")
    finally:
        for ns in ("c1", "lan"):
            host.run(f"ip netns pids {ns} | xargs -r kill")


def test_nft_backend_on_an_iptables_legacy_host(host):
    """Docker's rules in the legacy tables with FORWARD policy DROP: the nftables backend
    adds its compatibility jump there (with iptables-legacy-restore)."""
    www = host.dir / "www"
    try:
        host.sh(LAN_SETUP.replace("{www}", str(www)))
        host.sh("iptables-legacy -N DOCKER-USER && iptables-legacy -A FORWARD -j DOCKER-USER"
                " && iptables-legacy -P FORWARD DROP")
        assert "filter" in host.sh("cat /proc/net/ip_tables_names")
        assert curl(host, "c1", "http://198.51.100.2/") == ""      # the control: dropped
        py(host, "nftables", "fw.setup_network(N1); fw.setup_network(N1); fw.add_container('aaaa', N1, FA)")
        saved = host.sh("iptables-legacy-save -t filter")
        fwd = [l for l in saved.splitlines() if l.startswith("-A FORWARD")]
        assert fwd == ["-A FORWARD -j MINIRUN-FORWARD", "-A FORWARD -j DOCKER-USER"]
        assert sum(l.startswith("-A MINIRUN-FORWARD") for l in saved.splitlines()) == 3
        assert curl(host, "c1", "http://198.51.100.2/") == "lan"   # egress
        assert curl(host, "lan", "http://198.51.100.1:8080/") == "c1"
        assert py(host, "nftables", "print(fw.intact([N1]))").strip() == "True"
        host.sh("iptables-legacy -F")                               # their `iptables -F`
        assert py(host, "nftables", "print(fw.intact([N1]))").strip() == "False"
        py(host, "nftables", "fw.restore(N1, {'aaaa': FA})")
        assert py(host, "nftables", "print(fw.intact([N1]))").strip() == "True"
        assert curl(host, "c1", "http://198.51.100.2/") == "lan"
        py(host, "nftables", "fw.remove_last_container('aaaa', N1, FA)")
        saved = host.sh("iptables-legacy-save -t filter")
        assert "MINIRUN" not in saved and ":FORWARD DROP" in saved
        assert host.run("nft list table ip minirun").returncode != 0
        assert curl(host, "c1", "http://198.51.100.2/") == ""
    finally:
        for ns in ("c1", "lan"):
            host.run(f"ip netns pids {ns} | xargs -r kill")


# -- batched removal (rm -f of many) ------------------------------------------------

def test_nft_batched_removals_delete_only_their_own_elements(host):
    """Removals batched into one listing and one transaction (firewall/batch.py), for
    real: each container's elements go; another owner's, an admin's, and another's
    element now at one of our keys stay. Done as one explicit batch, then from threads
    (however they happen to be batched, the outcome is the same)."""
    before = ruleset(host)
    py(host, "nftables", """
        fw.setup_network(N1)
        for i in range(8):
            fw.add_container(f'c{i}', N1, [PortForward('tcp', None, 9000 + i, f'10.88.5.{10 + i}', 80)])
    """, owner="a")
    py(host, "nftables", "fw.setup_network(N2); fw.add_container('bbbb', N2, FB)", owner="b")
    host.sh('nft add element ip minirun ports_tcp "{ 9100 comment \\"admin\\" : 10.88.5.99 . 80 }"')
    host.sh("nft delete element ip minirun ports_tcp '{ 9003 }'")
    host.sh('nft add element ip minirun ports_tcp "{ 9003 comment \\"b:c3\\" : 10.88.6.3 . 80 }"')
    out = py(host, "nftables", """
        import threading
        def item(i):
            return (f'c{i}', N1, [PortForward('tcp', None, 9000 + i, f'10.88.5.{10 + i}', 80)])
        print(fw._remove_containers([item(i) for i in range(4)]))
        errors = []
        def remove(i):
            try:
                fw.remove_container(*item(i))
            except Exception as e:
                errors.append(e)
        threads = [threading.Thread(target=remove, args=(i,)) for i in range(4, 8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(errors, sorted(fw.container_ids()))
    """, owner="a")
    assert out.splitlines() == ["[None, None, None, None]", "[] []"]
    assert [l for l in tagged(host, "nftables") if l.startswith("ports_")] == [
        "ports_tcp 8081 b:bbbb", "ports_tcp 9003 b:c3", "ports_tcp 9100 admin",
        "ports_udp 5354 b:bbbb"]
    host.sh("nft delete element ip minirun ports_tcp '{ 9003, 9100 }'")
    py(host, "nftables", "fw.teardown_network(N1)", owner="a")
    py(host, "nftables", "fw.remove_last_container('bbbb', N2, FB)", owner="b")
    assert rules(host, "nftables") == [] and ruleset(host) == before
