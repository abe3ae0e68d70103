"""Names that resolve (network/aardvark.py, network/dns.py).

On a network made by `network create`, containers find each other by name and by
--network-alias through the state root's aardvark-dns on the network's gateway; not
from another network; other names go to the host's resolvers. The upstream here is a
second aardvark-dns, in a namespace of the test's own at 198.51.100.53, that knows
www.upstream.test; the throwaway host's /etc/resolv.conf (a bind mount in its own mount
namespace) names it. The default network keeps Docker's behaviour: /etc/hosts only.
"""
import json

import pytest

from harness import MINIRUN, ROOTFS

R = str(ROOTFS)
UPSTREAM = "198.51.100.53"
HOST_IP = "198.51.100.1"


def aardvark_procs(host):
    return host.inventory()["dns_procs"]


@pytest.fixture
def upstream(host):
    """An upstream resolver of our own, and the host's resolv.conf pointing at it."""
    conf = host.dir / "upstream"
    conf.mkdir()
    (conf / "up").write_text(f"{UPSTREAM}\n"
                             f"{'f' * 64} 203.0.113.7  www.upstream.test\n")
    resolv = host.dir / "resolv.conf"
    resolv.write_text(f"nameserver {UPSTREAM}\nsearch lan.example\n")
    host.add_lan_host(HOST_IP, UPSTREAM, "up")
    host.sh(f"""
        AARDVARK_NO_PROXY=1 ip netns exec up /usr/lib/podman/aardvark-dns --config {conf} -p 53 run
        mount --bind {resolv} /etc/resolv.conf
    """)
    try:
        yield
    finally:
        pid = (conf / "aardvark.pid").read_text().strip()
        host.run(f"kill {pid}; umount /etc/resolv.conf")
        host.remove_lan_host("up")


def in_container(host, net, script, *opts):
    return host.minirun("run", "--rm", "--network", net, *opts, R, "sh", "-c", script)


def test_names_and_aliases_on_a_named_network(host, upstream):
    baseline = host.inventory()
    host.minirun("network", "create", "--subnet", "10.231.0.0/24", "appnet", check=True)
    host.minirun("network", "create", "--subnet", "10.232.0.0/24", "othernet", check=True)
    assert aardvark_procs(host) == []  # started by the first container that needs it
    host.minirun("run", "-d", "--name", "web", "--network", "appnet",
                 "--network-alias", "www", "--network-alias", "frontend", R,
                 "httpd", "-f", "-p", "80", "-h", "/etc", check=True)
    assert len(aardvark_procs(host)) == 1
    host.minirun("run", "-d", "--name", "db", "--network", "appnet", R,
                 "sleep", "1000", check=True)
    assert len(aardvark_procs(host)) == 1  # one per state root, reloaded

    # by name and alias, with nslookup, ping and wget
    res = in_container(host, "appnet",
                       "cat /etc/resolv.conf; nslookup web; nslookup frontend; ping -c1 db "
                       "&& wget -q -O - http://www/hostname")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "nameserver 10.231.0.1" in res.stdout
    assert "Address: 10.231.0.2" in res.stdout, res.stdout  # web
    assert "from 10.231.0.3" in res.stdout      # db answers the ping
    # each container resolves the other
    # (busybox nslookup exits 1 if any name of the search list fails: read the answer)
    res = host.minirun("exec", "db", "nslookup", "www")
    assert "Address: 10.231.0.2" in res.stdout, res.stdout

    # not from another network, nor from the default one
    res = in_container(host, "othernet", "nslookup web; ping -c1 web")
    assert res.returncode != 0 and "10.231.0.2" not in res.stdout, res.stdout
    assert "can't find web.dns.minirun: NXDOMAIN" in res.stdout
    res = in_container(host, "bridge", "cat /etc/resolv.conf; ping -c1 web")
    assert res.returncode != 0 and "10.231.0.2" not in res.stdout, res.stdout
    assert f"nameserver {UPSTREAM}" in res.stdout  # the host's resolvers, as in Docker

    # other names go to the host's resolvers
    res = in_container(host, "appnet", "nslookup www.upstream.test")
    assert "Address: 203.0.113.7" in res.stdout, res.stdout + res.stderr

    # a name leaves with its container; the server with the last one
    host.minirun("rm", "-f", "web", check=True)
    res = in_container(host, "appnet", "nslookup web")
    assert "10.231.0.2" not in res.stdout and "NXDOMAIN" in res.stdout
    host.minirun("rm", "-f", "db", check=True)
    assert aardvark_procs(host) == []
    assert not (host.runroot / "aardvark-dns").exists()
    host.minirun("network", "rm", "appnet", "othernet", check=True)
    assert host.inventory() == baseline


def test_add_host_dns_options_in_the_files(host):
    host.minirun("network", "create", "--subnet", "10.233.0.0/24", "appnet", check=True)
    script = "cat /etc/hosts /etc/resolv.conf /etc/hostname"
    opts = ("--hostname", "box", "--add-host", "db.lan:192.0.2.10", "--add-host",
            "gw:host-gateway", "--dns", "192.0.2.53", "--dns", "192.0.2.54",
            "--dns-search", "corp.example", "--dns-option", "ndots:2")
    # the default network: the files say it all
    res = in_container(host, "bridge", script, *opts)
    assert res.returncode == 0, res.stderr
    lines = [l.split() for l in res.stdout.splitlines()]
    assert ["192.0.2.10", "db.lan"] in lines
    assert any(l[1:] == ["gw"] and l[0].startswith("10.") for l in lines if len(l) == 2)
    assert ["nameserver", "192.0.2.53"] in lines and ["nameserver", "192.0.2.54"] in lines
    assert ["search", "corp.example"] in lines and ["options", "ndots:2"] in lines
    assert any(l[:1] and l[0].startswith("10.") and "box" in l for l in lines)
    assert ["box"] in lines
    # a named network: aardvark-dns answers, and forwards to the --dns servers
    res = in_container(host, "appnet", script, *opts)
    assert res.returncode == 0, res.stderr
    lines = [l.split() for l in res.stdout.splitlines()]
    assert ["10.233.0.1", "gw"] in lines
    assert [l for l in lines if l[:1] == ["nameserver"]] == [["nameserver", "10.233.0.1"]]
    assert "other names go to 192.0.2.53, 192.0.2.54" in res.stdout
    host.minirun("network", "rm", "appnet", check=True)


@pytest.mark.parametrize("args, msg", [
    (("--dns", "1.2.3"), "invalid --dns '1.2.3'"),
    (("--add-host", "nocolon"), "expected NAME:IP"),
    (("--add-host", "h:999.1.1.1"), "invalid --add-host address"),
    (("--dns-search", "bad domain"), "invalid --dns-search"),
    (("--network-alias", "a"), "--network-alias needs a network"),
])
def test_bad_name_options(host, args, msg):
    res = host.minirun("run", "--rm", "--name", "x", *args, R, "true")
    assert res.returncode == 125 and res.stderr.startswith("minirun: ") and msg in res.stderr
    assert len(res.stderr.splitlines()) == 1
    assert host.minirun("ps", "-a").stdout.count("\n") == 1  # the header: nothing made


@pytest.mark.parametrize("point", ["intent:dns.entry", "aardvark.start", "aardvark.started",
                                   "done:dns.entry"])
def test_sigkill_at_the_dns_steps_leaves_nothing(host, point):
    host.minirun("network", "create", "--subnet", "10.234.0.0/24", "appnet", check=True)
    baseline = host.inventory()
    res = host.run(["env", f"MINIRUN_KILL_AT={point}"] + MINIRUN +
                   ["run", "-d", "--name", "k", "--network", "appnet", R, "sleep", "1000"])
    assert res.returncode != 0
    assert host.minirun("system", "prune").returncode == 0
    assert host.inventory() == baseline, point
    # and it works again afterwards
    host.minirun("run", "-d", "--name", "k", "--network", "appnet", R, "sleep", "1000",
                 check=True)
    host.minirun("rm", "-f", "k", check=True)
    assert host.inventory() == baseline
    host.minirun("network", "rm", "appnet", check=True)


def test_connect_and_disconnect(host):
    baseline = host.inventory()
    host.minirun("network", "create", "--subnet", "10.241.0.0/24", "n1", check=True)
    host.minirun("network", "create", "--subnet", "10.242.0.0/24", "n2", check=True)
    host.minirun("run", "-d", "--name", "a", "--network", "n1", R, "sleep", "1000", check=True)
    host.minirun("run", "-d", "--name", "b", "--network", "n2", R, "sleep", "1000", check=True)
    assert "10.242." not in host.minirun("exec", "a", "nslookup", "b").stdout
    res = host.minirun("network", "connect", "--alias", "bee", "--ip", "10.241.0.77", "n1", "b")
    assert res.returncode == 0 and res.stdout == "", res.stderr
    # a second veth, an address on n1, no second default route; names on n1
    out = host.minirun("exec", "b", "sh", "-c", "ip -o -4 addr show eth1; ip route").stdout
    assert "inet 10.241.0.77/24" in out and out.count("default") == 1, out
    for name in ("b", "bee"):
        assert "Address: 10.241.0.77" in host.minirun("exec", "a", "nslookup", name).stdout
    assert host.minirun("exec", "a", "ping", "-c1", "bee").returncode == 0
    rec = json.dumps(host.record("b"))
    assert '"ifname": "eth1"' in rec and "10.241.0.77" in rec
    # twice, or to a network that does not exist: refused, nothing changes
    res = host.minirun("network", "connect", "n1", "b")
    assert res.returncode == 125 and "already connected" in res.stderr
    res = host.minirun("network", "connect", "nosuch", "b")
    assert res.returncode == 125 and res.stderr.startswith("minirun: ")
    res = host.minirun("network", "rm", "n1")
    assert res.returncode == 125 and "b" in res.stderr
    # disconnect: the cable, the address and the names go
    host.minirun("network", "disconnect", "n1", "b", check=True)
    assert host.minirun("exec", "b", "ip", "link", "show", "eth1").returncode != 0
    assert "10.241.0.77" not in host.minirun("exec", "a", "nslookup", "bee").stdout
    res = host.minirun("network", "disconnect", "n1", "b")
    assert res.returncode == 125 and "not connected" in res.stderr
    # connected again, then removed with the container: rm undoes it too
    host.minirun("network", "connect", "n1", "b", check=True)
    host.minirun("rm", "-f", "a", "b", check=True)
    host.minirun("network", "rm", "n1", "n2", check=True)
    assert host.inventory() == baseline


@pytest.mark.parametrize("point", ["intent:conn.lease", "intent:conn.veth", "done:conn.veth",
                                   "intent:conn.dns", "done:conn.dns"])
def test_connect_killed_leaves_nothing(host, point):
    baseline = host.inventory()
    host.minirun("network", "create", "--subnet", "10.243.0.0/24", "n1", check=True)
    host.minirun("network", "create", "--subnet", "10.244.0.0/24", "n2", check=True)
    host.minirun("run", "-d", "--name", "b", "--network", "n2", R, "sleep", "1000", check=True)
    res = host.run(["env", f"MINIRUN_KILL_AT={point}"] + MINIRUN +
                   ["network", "connect", "n1", "b"])
    assert res.returncode == -9 or res.returncode == 137, (point, res)
    assert host.minirun("system", "prune").returncode == 0
    host.minirun("rm", "-f", "b", check=True)  # the journal has the half-made connection
    host.minirun("network", "rm", "n1", "n2", check=True)
    assert host.inventory() == baseline, point
