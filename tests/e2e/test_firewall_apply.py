"""The firewall backends applied for real, each test inside a throwaway host (net+mount
namespaces, see tests/harness.py), checked with `nft list ruleset` / `iptables-save`.
Traffic only inside namespaces of our own, on 10.88.x and 198.51.100.0/24."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import Host  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

BACKENDS = ["nftables", "iptables"]

PRELUDE = """
import json, sys
from minirun.network.firewall import get_firewall, NetworkInfo, PortForward
fw = get_firewall({backend!r}, lock_path={lock!r})
N1 = NetworkInfo("net1", "mrbr1", "10.88.5.0/24", "10.88.5.1")
N2 = NetworkInfo("net2", "mrbr2", "10.88.6.0/24", "10.88.6.1")
FA = [PortForward("tcp", None, 8080, "10.88.5.2", 80),
      PortForward("udp", "127.0.0.1", 5353, "10.88.5.2", 53),
      PortForward("tcp", "127.0.0.1", 8082, "10.88.5.2", 80)]
FB = [PortForward("tcp", None, 8081, "10.88.5.3", 80),
      PortForward("udp", None, 5354, "10.88.5.3", 53)]
"""


@pytest.fixture
def host():
    h = Host("fw")
    yield h
    h.proc.kill()   # the namespaces, and every rule in them, die with it
    h.proc.wait()
    subprocess.run(["rm", "-rf", str(h.dir)])


def py(host: Host, backend: str, code: str) -> str:
    script = PRELUDE.format(backend=backend, lock=str(host.dir / "fw.lock")) + textwrap.dedent(code)
    res = host.run([sys.executable, "-c", script])
    assert res.returncode == 0, res.stderr
    return res.stdout


def ruleset(host: Host) -> str:
    """Everything the kernel holds, in both views."""
    return host.sh("nft list ruleset") + host.sh("iptables-save | grep -v '^#' || true")


def rules(host: Host, backend: str) -> list[str]:
    """minirun's rules and elements, one line each."""
    if backend == "iptables":
        return [l for l in host.sh("iptables-save").splitlines()
                if l.startswith(":MINIRUN") or ("MINIRUN" in l and l.startswith("-A"))]
    out = host.run("nft list table ip minirun").stdout
    lines = [l.strip() for l in out.splitlines()]
    elems = []
    for l in lines:
        if l.startswith("elements = {"):
            elems += [e.strip() for e in l[len("elements = {"):-1].split(",")]
    return [l for l in lines if l and not l.startswith("elements")] + elems


# -- rulesets --------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_setup_teardown_idempotent_and_clean(host, backend):
    before = ruleset(host)
    py(host, backend, "fw.setup_network(N1)")
    once = rules(host, backend)
    assert once
    py(host, backend, "fw.setup_network(N1); fw.setup_network(N1)")
    assert rules(host, backend) == once
    assert py(host, backend, "print(sorted(fw.network_names()))").strip() == "['net1']"
    py(host, backend, "fw.teardown_network(N1)")
    py(host, backend, "fw.teardown_network(N1)")
    assert rules(host, backend) == []
    after = ruleset(host)
    if backend == "nftables":
        assert after == before
    else:  # iptables-nft leaves the empty built-in tables it created; no rule, no chain of ours
        assert not re.search(r"MINIRUN|minirun", after)


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_containers_remove_one(host, backend):
    py(host, backend, "fw.setup_network(N1)")
    base = len(rules(host, backend))
    py(host, backend, "fw.add_container('aaaa', N1, FA); fw.add_container('bbbb', N1, FB)")
    assert len(rules(host, backend)) == base + 5
    assert py(host, backend, "print(sorted(fw.container_ids()))").strip() == "['aaaa', 'bbbb']"
    # remove A twice, and A's forwards under B's id: B's entries stay
    py(host, backend, "fw.remove_container('aaaa', N1, FA); fw.remove_container('aaaa', N1, FA)"
                      "; fw.remove_container('bbbb', N1, FA)")
    left = rules(host, backend)
    assert len(left) == base + 2
    assert all("aaaa" not in l for l in left) and sum("bbbb" in l for l in left) == 2
    # crash reclaim: purge without knowing the forwards
    py(host, backend, "fw.purge_container('bbbb'); fw.purge_container('bbbb')")
    assert len(rules(host, backend)) == base
    assert py(host, backend, "print(sorted(fw.container_ids()))").strip() == "[]"
    py(host, backend, "fw.teardown_network(N1)")
    assert rules(host, backend) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_add_twice_and_conflict(host, backend):
    py(host, backend, "fw.setup_network(N1); fw.add_container('aaaa', N1, FA)")
    n = len(rules(host, backend))
    py(host, backend, "fw.add_container('aaaa', N1, FA)")  # a retry adds nothing
    assert len(rules(host, backend)) == n
    out = py(host, backend, """
        from minirun.errors import Conflict
        try:
            fw.add_container('cccc', N1, [PortForward("tcp", None, 8080, "10.88.5.9", 80)])
        except Conflict as e:
            print("conflict:", e)
    """)
    assert out.startswith("conflict:") and "8080/tcp is already published by aaaa" in out
    assert len(rules(host, backend)) == n


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_networks(host, backend):
    py(host, backend, "fw.setup_network(N1)")
    one = rules(host, backend)
    py(host, backend, "fw.setup_network(N2)")
    assert py(host, backend, "print(sorted(fw.network_names()))").strip() == "['net1', 'net2']"
    py(host, backend, "fw.teardown_network(N2); fw.teardown_network(N2)")
    assert rules(host, backend) == one
    py(host, backend, "fw.setup_network(N2); fw.teardown_network(N1)")
    assert py(host, backend, "print(sorted(fw.network_names()))").strip() == "['net2']"
    py(host, backend, "fw.teardown_network(N2)")
    assert rules(host, backend) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_setup_leaves_one_copy(host, backend):
    py(host, backend, "fw.setup_network(N1); fw.setup_network(N2)")
    expected = sorted(rules(host, backend))
    py(host, backend, "fw.teardown_network(N1); fw.teardown_network(N2)")
    assert rules(host, backend) == []
    out = py(host, backend, """
        import subprocess
        code = ("import sys; from minirun.network.firewall import get_firewall, NetworkInfo as N;"
                f"fw = get_firewall({fw.name!r}, lock_path={str(fw.lock_path)!r});"
                "n = [N('net1','mrbr1','10.88.5.0/24','10.88.5.1'), N('net2','mrbr2','10.88.6.0/24','10.88.6.1')];"
                "[fw.setup_network(n[int(sys.argv[1]) % 2]) for _ in range(3)]")
        procs = [subprocess.Popen([sys.executable, "-c", code, str(i)]) for i in range(8)]
        print([p.wait() for p in procs])
    """)
    assert out.strip() == str([0] * 8)
    assert sorted(rules(host, backend)) == expected


@pytest.mark.parametrize("backend", BACKENDS)
def test_admin_user_chain_survives(host, backend):
    before = ruleset(host)
    py(host, backend, "fw.setup_network(N1)")
    if backend == "nftables":
        host.sh('nft add rule ip minirun user iifname "eth9" drop')
    else:
        host.sh("iptables -A MINIRUN-USER -i eth9 -j DROP")
    py(host, backend, "fw.setup_network(N1); fw.setup_network(N2); fw.teardown_network(N2)")
    py(host, backend, "fw.teardown_network(N1)")
    left = rules(host, backend)
    assert any("eth9" in l for l in left)
    assert py(host, backend, "print(sorted(fw.network_names()))").strip() == "[]"
    if backend == "nftables":
        host.sh("nft flush chain ip minirun user")
    else:
        host.sh("iptables -F MINIRUN-USER")
    py(host, backend, "fw.teardown_network(N1)")
    assert rules(host, backend) == []
    if backend == "nftables":
        assert ruleset(host) == before


def test_nft_forward_policy_drop_compat(host):
    host.sh("iptables -A FORWARD -i eth9 -j ACCEPT && iptables -P FORWARD DROP")
    foreign = "-A FORWARD -i eth9 -j ACCEPT"
    py(host, "nftables", "fw.setup_network(N1); fw.setup_network(N1); fw.setup_network(N2)")
    saved = host.sh("iptables-save -t filter")
    fwd = [l for l in saved.splitlines() if l.startswith("-A FORWARD")]
    assert fwd == ["-A FORWARD -j MINIRUN-FORWARD", foreign]   # one jump, first; theirs kept
    assert len([l for l in saved.splitlines() if l.startswith("-A MINIRUN-FORWARD")]) == 6
    py(host, "nftables", "fw.teardown_network(N1)")
    assert len([l for l in host.sh("iptables-save -t filter").splitlines()
                if l.startswith("-A MINIRUN-FORWARD")]) == 3
    py(host, "nftables", "fw.teardown_network(N2); fw.teardown_network(N2)")
    saved = host.sh("iptables-save -t filter")
    assert "MINIRUN" not in saved and ":FORWARD DROP" in saved and foreign in saved
    assert host.run("nft list table ip minirun").returncode != 0


def test_nft_uses_maps_not_rules_per_container(host):
    py(host, "nftables", "fw.setup_network(N1)")
    chains = host.sh("nft list chains")
    before = host.sh("nft -a list table ip minirun | grep -c handle")
    py(host, "nftables", "\n".join(
        f"fw.add_container('c{i}', N1, [PortForward('tcp', None, {9000 + i}, '10.88.5.{i + 2}', 80)])"
        for i in range(50)))
    assert host.sh("nft -a list table ip minirun | grep -c handle") == before
    assert host.sh("nft list chains") == chains
    m = json.loads(host.sh("nft -j list map ip minirun ports_tcp"))
    elems = [o["map"] for o in m["nftables"] if "map" in o][0]["elem"]
    assert len(elems) == 50


# -- a quick data path: plain netns + veth + busybox, no containers ------------------

DATAPATH_SETUP = r"""
set -e
sysctl -qw net.ipv4.ip_forward=1
iptables -P FORWARD DROP
ip link add mrbr1 type bridge && ip addr add 10.88.5.1/24 dev mrbr1 && ip link set mrbr1 up
ip link add mrbr2 type bridge && ip addr add 10.88.6.1/24 dev mrbr2 && ip link set mrbr2 up
sysctl -qw net.ipv4.conf.mrbr1.route_localnet=1 net.ipv4.conf.mrbr2.route_localnet=1
for c in c1:mrbr1:10.88.5.2:10.88.5.1 c2:mrbr2:10.88.6.2:10.88.6.1; do
  IFS=: read n br ip gw <<EOF
$c
EOF
  ip netns add $n
  ip link add v$n type veth peer name eth0 netns $n
  ip link set v$n master $br up
  ip link set v$n type bridge_slave hairpin on   # the bridge driver's job: a container reaching itself
  ip -n $n addr add $ip/24 dev eth0; ip -n $n link set eth0 up; ip -n $n link set lo up
  ip -n $n route add default via $gw
done
ip netns add lan
ip link add vlan type veth peer name eth0 netns lan
ip addr add 198.51.100.1/24 dev vlan && ip link set vlan up
ip -n lan addr add 198.51.100.2/24 dev eth0 && ip -n lan link set eth0 up && ip -n lan link set lo up
ip -n lan route add 10.88.5.0/24 via 198.51.100.1
mkdir -p {www}/c1 {www}/lan && echo c1 > {www}/c1/index.html && echo lan > {www}/lan/index.html
ip netns exec c1 busybox httpd -p 80 -h {www}/c1
ip netns exec lan busybox httpd -p 80 -h {www}/lan
ip netns exec c1 python3 -c '
import socket, os
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 53))
if os.fork(): os._exit(0)
while True:
    d, a = s.recvfrom(100); s.sendto(b"echo:" + d, a)
' </dev/null >/dev/null 2>&1
"""

UDP = ("python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); "
       "s.settimeout(2); s.sendto(b\"hi\",(sys.argv[1],int(sys.argv[2]))); "
       "print(s.recvfrom(100)[0].decode())'")


@pytest.mark.parametrize("backend", BACKENDS)
def test_datapath(host, backend):
    www = host.dir / "www"
    try:
        host.sh(DATAPATH_SETUP.replace("{www}", str(www)))
        py(host, backend, "fw.setup_network(N1); fw.setup_network(N2); fw.add_container('aaaa', N1, FA)")

        def curl(where: str, url: str) -> str:
            pre = f"ip netns exec {where} " if where else ""
            return host.run(f"{pre}curl -s -m 2 {url}").stdout.strip()

        assert curl("", "http://127.0.0.1:8080/") == "c1"          # host, localhost
        assert curl("", "http://127.0.0.1:8082/") == "c1"          # published on 127.0.0.1
        assert curl("", "http://198.51.100.1:8080/") == "c1"       # host, own address (output)
        assert curl("lan", "http://198.51.100.1:8080/") == "c1"    # from outside (prerouting)
        assert curl("lan", "http://198.51.100.1:8082/") == ""      # 127.0.0.1-only: not from the LAN
        assert curl("lan", "http://10.88.5.2/") == ""              # unpublished: no routing in
        assert curl("c1", "http://198.51.100.1:8080/") == "c1"     # hairpin to itself
        assert curl("c2", "http://198.51.100.1:8080/") == "c1"     # other network, published port
        assert curl("c2", "http://10.88.5.2/") == ""               # isolation
        assert curl("c1", "http://198.51.100.2/") == "lan"         # egress (masqueraded)
        assert host.run(f"{UDP} 127.0.0.1 5353").stdout.strip() == "echo:hi"
        py(host, backend, "fw.remove_container('aaaa', N1, FA)")
        assert curl("", "http://127.0.0.1:8080/") == ""
        py(host, backend, "fw.teardown_network(N1); fw.teardown_network(N2)")
        assert rules(host, backend) == []
    finally:
        for ns in ("c1", "c2", "lan"):
            host.run(f"ip netns pids {ns} | xargs -r kill")


def test_localhost_is_not_reachable_from_a_bridge(host):
    """CVE-2020-8558: route_localnet is on for the bridge, so a neighbour that routes
    127.0.0.1 to the host would reach services bound to the host's 127.0.0.1; minirun's
    raw drop stops it (the control below shows the hole without it)."""
    www = host.dir / "www"
    pid = None
    try:
        host.sh(DATAPATH_SETUP.replace("{www}", str(www)))
        pid = host.sh(f"busybox httpd -f -p 127.0.0.1:9999 -h {www}/lan </dev/null >/dev/null 2>&1 "
                      "& echo $!").strip()
        py(host, "nftables", "fw.setup_network(N1); fw.add_container('aaaa', N1, FA)")
        # c2 becomes a neighbour on mrbr1 that routes 127.0.0.1 to the host
        host.sh("ip link set vc2 nomaster && ip link set vc2 master mrbr1 && "
                "ip -n c2 addr add 10.88.5.3/24 dev eth0 && ip -n c2 link set lo down && "
                "ip -n c2 route del local 127.0.0.1 dev lo table local && "
                "ip -n c2 route del local 127.0.0.0/8 dev lo table local && "
                "ip -n c2 route add 127.0.0.1/32 via 10.88.5.1 src 10.88.5.3")
        assert host.sh("curl -s -m 2 http://127.0.0.1:9999/").strip() == "lan"
        # count what is delivered locally to 127.0.0.1 from the bridge
        host.sh("nft add table ip probe && nft add chain ip probe input "
                "'{ type filter hook input priority 0; }' && "
                "nft add rule ip probe input iifname mrbr1 ip daddr 127.0.0.1 counter")
        delivered = lambda: int(re.search(r"packets (\d+)", host.sh("nft list table ip probe"))[1])
        cmd = "ip netns exec c2 curl -s -m 1 http://127.0.0.1:9999/"
        assert host.run(cmd).stdout.strip() == ""
        assert delivered() == 0
        host.sh("nft flush chain ip minirun raw_prerouting")  # the control: without the drop...
        host.run(cmd)
        assert delivered() > 0                               # ...it reaches the host's 127.0.0.1
    finally:
        if pid:
            host.run(["kill", pid])
        for ns in ("c1", "c2", "lan"):
            host.run(f"ip netns pids {ns} | xargs -r kill")


def test_nft_cli_fallback_matches_library(host):
    """Without libnftables the same text goes through `nft -f -`; listings through `nft -j`."""
    py(host, "nftables", "fw.setup_network(N1); fw.add_container('aaaa', N1, FA)")
    with_lib = rules(host, "nftables")
    py(host, "nftables", "fw.purge_container('aaaa'); fw.teardown_network(N1)")
    out = py(host, "nftables", """
        from minirun.network.firewall import SystemRunner
        fw = get_firewall("nftables", runner=SystemRunner(use_library=False), lock_path=str(fw.lock_path))
        fw.setup_network(N1); fw.add_container('aaaa', N1, FA)
        print(sorted(fw.container_ids()), sorted(fw.network_names()))
    """)
    assert out.strip() == "['aaaa'] ['net1']"
    assert rules(host, "nftables") == with_lib
