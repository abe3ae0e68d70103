"""The networking plugin end to end, inside a throwaway host, with a simulated LAN host.

Topology (all inside the test's own namespaces; documentation range 198.51.100.0/24):

    [lan netns] 198.51.100.2 ──veth── 198.51.100.1 [test host] ──bridge── containers

(busybox 1.35's `wget -T` crashes, so timeouts use the `timeout` applet.)
The LAN host runs busybox httpd with a CGI script that answers with the
client's address, so egress tests can see which source address arrived.
"""
import json
import subprocess
import sys
import textwrap
import time

import pytest

from harness import ROOTFS

R = str(ROOTFS)
HOST_IP = "198.51.100.1"
LAN_IP = "198.51.100.2"
BACKENDS = ["nftables", "iptables"]


@pytest.fixture
def lan(host, tmp_path):
    www = tmp_path / "www"
    (www / "cgi-bin").mkdir(parents=True)
    script = www / "cgi-bin" / "ip"
    script.write_text(textwrap.dedent("""\
        #!/bin/busybox sh
        echo "Content-Type: text/plain"
        echo
        echo "$REMOTE_ADDR"
    """))
    script.chmod(0o755)
    (www / "index.html").write_text("lan host\n")
    host.add_lan_host(HOST_IP, LAN_IP)
    server = host.popen(["ip", "netns", "exec", "lan", "busybox", "httpd", "-f", "-p", "8000",
                         "-h", str(www)])
    try:
        host.wait_for(f"ip netns exec lan curl -sf -m1 http://{LAN_IP}:8000/")
        yield
    finally:
        server.kill()
        server.wait()
        host.remove_lan_host()




def curl(host, url, netns=None, timeout=3):
    cmd = f"curl -s -m {timeout} {url}"
    if netns:
        cmd = f"ip netns exec {netns} {cmd}"
    res = host.run(cmd)
    return res.stdout if res.returncode == 0 else None


def web(host, name, *args, net_args=(), fw="nftables"):
    """A detached busybox httpd that answers with its own name."""
    res = host.minirun("--firewall", fw, "run", "-d", "--name", name, *net_args, *args, R,
                       "sh", "-c", f"echo {name} > /var/www/index.html; "
                                   "exec httpd -f -p 80 -h /var/www")
    assert res.returncode == 0, res.stderr
    return host.record(name)


def wait_http(host, url, want, netns=None, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        got = curl(host, url, netns, timeout=1)
        if got is not None and got.strip() == want:
            return
        assert time.monotonic() < deadline, f"{url}: got {got!r}, want {want!r}"
        time.sleep(0.05)


@pytest.mark.parametrize("fw", BACKENDS)
def test_published_port_from_everywhere(host, lan, fw):
    rec = web(host, "web", "-p", "8080:80", fw=fw)
    ip = rec["network"]["ip"]
    wait_http(host, "http://127.0.0.1:8080/", "web")          # host, loopback
    wait_http(host, f"http://{HOST_IP}:8080/", "web")         # host, its own address
    wait_http(host, f"http://{ip}:80/", "web")                # host -> container directly
    wait_http(host, f"http://{HOST_IP}:8080/", "web", netns="lan")   # another host on the LAN
    # another container: directly, and through the published port (hairpin)
    for url in (f"http://{ip}/", f"http://{HOST_IP}:8080/"):
        res = host.minirun("--firewall", fw, "run", "--rm", "--init", R, "timeout", "5", "wget", "-qO-", url)
        assert res.stdout.strip() == "web", (url, res.stderr)
    # the web container reaches its own published port
    res = host.minirun("exec", "web", "timeout", "5", "wget", "-qO-", f"http://{HOST_IP}:8080/")
    assert res.stdout.strip() == "web", res.stderr
    host.minirun("--firewall", fw, "rm", "-f", "web", check=True)
    assert curl(host, "http://127.0.0.1:8080/", timeout=1) is None


@pytest.mark.parametrize("fw", BACKENDS)
def test_egress_is_masqueraded(host, lan, fw):
    res = host.minirun("--firewall", fw, "run", "--rm", "--init", R, "timeout", "5", "wget", "-qO-",
                       f"http://{LAN_IP}:8000/cgi-bin/ip")
    assert res.returncode == 0, res.stderr
    # busybox httpd listens on IPv6 and reports IPv4 peers as mapped addresses
    assert res.stdout.strip().strip("[]").removeprefix("::ffff:") == HOST_IP


@pytest.mark.parametrize("fw", BACKENDS)
def test_localhost_only_publishing(host, lan, fw):
    web(host, "local", "-p", "127.0.0.1:8081:80", fw=fw)
    wait_http(host, "http://127.0.0.1:8081/", "local")
    assert curl(host, f"http://{HOST_IP}:8081/", timeout=1) is None
    assert curl(host, f"http://{HOST_IP}:8081/", netns="lan", timeout=1) is None
    host.minirun("--firewall", fw, "rm", "-f", "local", check=True)


UDP_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5353))
print("ready", flush=True)
data, peer = s.recvfrom(100)
s.sendto(data.upper(), peer)
print(data.decode(), flush=True)
"""
UDP_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
for _ in range(20):
    s.sendto(b"hello", (sys.argv[1], 5353))
    try:
        print(s.recvfrom(100)[0].decode())
        break
    except socket.timeout:
        pass
"""


@pytest.mark.parametrize("fw", BACKENDS)
def test_udp_publishing(host, fw):
    # Debian's busybox has no UDP server, so the server runs in the container's network
    # namespace from the host side (`ip netns exec`): the packets take the same path.
    host.minirun("--firewall", fw, "run", "-d", "--name", "udp", "-p", "5353:5353/udp", R,
                 "sleep", "1000", check=True)
    server = host.popen(["ip", "netns", "exec", "udp", sys.executable, "-c", UDP_SERVER],
                        stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        reply = host.run([sys.executable, "-c", UDP_CLIENT, "127.0.0.1"]).stdout.strip()
        assert reply == "HELLO"
        assert server.stdout.readline().strip() == "hello"
    finally:
        server.kill()
        server.wait()
    host.minirun("--firewall", fw, "rm", "-f", "udp", check=True)


STALE_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 40123))   # a fixed source port: the same conntrack tuple every time
s.settimeout(0.3)
for _ in range(int(sys.argv[1])):
    s.sendto(b"ping", ("127.0.0.1", 5354))
    try:
        print(s.recvfrom(100)[0].decode())
        break
    except (socket.timeout, ConnectionRefusedError):
        pass
"""


def test_udp_stale_conntrack_is_flushed(host):
    # Another container makes minirun's NAT rules exist, so conntrack tracks flows.
    host.minirun("run", "-d", "--name", "first", R, "sleep", "1000", check=True)
    host.run([sys.executable, "-c", STALE_CLIENT, "2"])  # a flow before the port exists
    assert "dport=5354" in host.sh("cat /proc/net/nf_conntrack")
    host.minirun("run", "-d", "--name", "late", "-p", "5354:5353/udp", R, "sleep", "1000",
                 check=True)
    server = host.popen(["ip", "netns", "exec", "late", sys.executable, "-c", UDP_SERVER],
                        stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        assert host.run([sys.executable, "-c", STALE_CLIENT, "10"]).stdout.strip() == "PING"
    finally:
        server.kill()
        server.wait()
    host.minirun("rm", "-f", "late", "first", check=True)


def test_the_lesson_commands_work(host):
    routes_before = host.sh("ip route")
    rec = web(host, "web")
    net = rec["network"]
    assert host.sh("ip netns").split()[0] == "web"
    links = host.sh("ip netns exec web ip -o link | awk -F': ' '{print $2}'").split()
    assert [l.split("@")[0] for l in links] == ["lo", "eth0"]
    assert f"default via {net['gateway']} dev eth0" in host.sh("ip -n web route")
    host.sh(f"ip netns exec web ping -c1 -W2 {net['gateway']}")
    assert net["gateway"] in host.sh("ip netns exec web ip neigh")
    # the host gained the bridge's route, nothing else
    added = set(host.sh("ip route").splitlines()) - set(routes_before.splitlines())
    assert len(added) == 1 and "dev minirun0" in added.pop()
    assert net["veth"] in host.sh("ip -o link show master minirun0")
    assert len(net["veth"]) <= 15
    host.minirun("rm", "-f", "web", check=True)


def test_loopback_sized_mtu_inside_ethernet_mtu_outside(host, lan):
    """The veth pair and the bridge carry 65520-byte frames (host <-> container at
    loopback speed, issue #12); what goes through the gateway keeps 1500 (the default
    route's mtu), so the LAN sees the packets and the TCP MSS it saw before."""
    rec = web(host, "web")
    ip, veth = rec["network"]["ip"], rec["network"]["veth"]
    for dev in ("minirun0", veth):
        assert " mtu 65520 " in host.sh(f"ip -o link show dev {dev}"), dev
    assert " mtu 65520 " in host.sh("ip -n web -o link show dev eth0")
    assert "mtu 1500" in host.sh("ip -n web route show default")
    host.sh(f"ping -M do -s 65000 -c1 -W2 {ip}")  # one unfragmented 65028-byte packet
    host.sh(f"ip netns exec web ping -M do -s 1472 -c1 -W2 {LAN_IP}")
    res = host.run(f"ip netns exec web ping -M do -s 1473 -c1 -W2 {LAN_IP}")
    assert res.returncode != 0 and "1500" in res.stdout + res.stderr, res
    host.minirun("rm", "-f", "web", check=True)


def test_cables_are_ipv4_only_and_silent(host):
    """Both ends of a container's veth have IPv6 off before they go up (the networks are
    IPv4 only): no link-local address, and no multicast (DAD, MLD, router solicitations)
    for the bridge to flood to every other container -- at 1,000 containers that flood
    made each start ~20% slower (issue #12). IPv4 between containers still works."""
    a = web(host, "a")
    before = host.sh("cat /sys/class/net/minirun0/statistics/multicast")
    b = web(host, "b")
    for rec, name in ((a, "a"), (b, "b")):
        veth = rec["network"]["veth"]
        assert host.sh(f"cat /proc/sys/net/ipv6/conf/{veth}/disable_ipv6").strip() == "1"
        assert host.sh(f"ip netns exec {name} cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6"
                       ).strip() == "1"
        assert host.sh(f"ip -6 -o addr show dev {veth}").strip() == ""
        assert host.sh(f"ip -n {name} -6 -o addr show dev eth0").strip() == ""
    # what the bridge received from its ports since b was plugged in: no multicast at all
    # (b's IPv6 would have sent DAD, MLD and solicitations, a's solicitations go on)
    time.sleep(1)
    assert host.sh("cat /sys/class/net/minirun0/statistics/multicast") == before
    host.sh(f"ip netns exec a ping -c1 -W2 {b['network']['ip']}")
    host.minirun("rm", "-f", "a", "b", check=True)


def test_names_and_resolv_conf(host):
    res = host.minirun("run", "--rm", "--name", "named", R, "sh", "-c",
                       "cat /etc/hosts /etc/resolv.conf /etc/hostname; ip -4 -o addr show eth0")
    assert res.returncode == 0, res.stderr
    ip = res.stdout.split("inet ")[1].split("/")[0]
    hosts = res.stdout
    assert any(l.split()[:1] == [ip] and "named" in l.split() for l in hosts.splitlines())
    ns = [l.split()[1] for l in res.stdout.splitlines() if l.startswith("nameserver")]
    assert ns and not any(n.startswith("127.") for n in ns)


def test_network_none_host_and_container(host):
    res = host.minirun("run", "--rm", "--network", "none", R, "ip", "-o", "link")
    assert [l.split(": ")[1] for l in res.stdout.splitlines()] == ["lo"]
    res = host.minirun("run", "--rm", "--network", "host", R, "ip", "-o", "link")
    assert "lo" in res.stdout and res.returncode == 0
    web(host, "pod")
    res = host.minirun("run", "--rm", "--network", "container:pod", "--init", R, "timeout", "5", "wget",
                       "-qO-", "http://127.0.0.1/")
    assert res.stdout.strip() == "pod", res.stderr
    host.minirun("rm", "-f", "pod", check=True)


def test_networks_as_objects_and_isolation(host):
    out = host.minirun("network", "create", "--subnet", "192.168.15.0/24", "--gateway",
                       "192.168.15.5", "--bridge", "v-net-0", "lesson", check=True)
    assert out.stdout.strip() == "lesson"
    host.minirun("network", "create", "other", check=True)
    a = web(host, "a", net_args=("--network", "lesson"))
    web(host, "b", net_args=("--network", "other"))
    assert a["network"]["ip"].startswith("192.168.15.") and a["network"]["ip"] != "192.168.15.5"
    assert "192.168.15.5/24" in host.sh("ip -o addr show v-net-0")
    [info] = json.loads(host.minirun("network", "inspect", "lesson", check=True).stdout)
    assert info["Options"]["com.docker.network.bridge.name"] == "v-net-0"
    assert info["Containers"][a["id"]] == {
        "Name": "a", "EndpointID": "", "MacAddress": a["network"]["mac"],
        "IPv4Address": a["network"]["ip"] + "/24", "IPv6Address": ""}
    # a container on the same network reaches a; one on another network does not
    res = host.minirun("run", "--rm", "--network", "lesson", "--init", R, "timeout", "3", "wget", "-qO-",
                       f"http://{a['network']['ip']}/")
    assert res.stdout.strip() == "a"
    res = host.minirun("run", "--rm", "--network", "other", "--init", R, "timeout", "3", "wget", "-qO-",
                       f"http://{a['network']['ip']}/")
    assert res.returncode != 0
    assert "lesson" in host.minirun("network", "ls", check=True).stdout
    res = host.minirun("network", "rm", "lesson")
    assert res.returncode == 125 and "attached" in res.stderr
    host.minirun("rm", "-f", "a", "b", check=True)
    host.minirun("network", "rm", "lesson", "other", check=True)


@pytest.mark.parametrize("args,msg", [
    (["--subnet", "10.99.0.0/16"], "overlaps"),
    (["--subnet", "192.168.15.0/24", "--gateway", "192.168.16.1"], "gateway"),
    (["--subnet", "not-a-subnet"], "invalid subnet"),
    (["--bridge", "this-name-is-far-too-long"], "invalid bridge name"),
])
def test_bad_networks(host, args, msg):
    host.minirun("network", "ls", check=True)  # makes the default network exist
    res = host.minirun("network", "create", *args, "bad")
    assert res.returncode == 125 and msg in res.stderr, res.stderr
    assert "bad" not in host.minirun("network", "ls").stdout


def test_subnet_overlapping_a_host_route_is_refused(host):
    host.sh("ip link add dummy9 type veth peer name dummy9p && ip addr add 203.0.113.1/24 dev dummy9 && "
            "ip link set dummy9 up")
    res = host.minirun("network", "create", "--subnet", "203.0.113.0/25", "clash")
    assert res.returncode == 125 and "overlaps the host route" in res.stderr
    host.sh("ip link del dummy9")


def test_port_conflicts(host):
    listener = host.popen(["busybox", "nc", "-l", "-p", "8090"])
    host.wait_for("grep -q ':1F9A ' /proc/net/tcp /proc/net/tcp6")
    res = host.minirun("run", "-d", "--name", "c1", "-p", "8090:80", R, "true")
    assert res.returncode == 125 and "in use" in res.stderr
    listener.kill()
    listener.wait()
    web(host, "c1", "-p", "8091:80")
    res = host.minirun("run", "-d", "--name", "c2", "-p", "8091:80", R, "true")
    assert res.returncode == 125 and "already published by container c1" in res.stderr
    host.minirun("rm", "-f", "c1", check=True)
    # freed at once
    web(host, "c2", "-p", "8091:80")
    host.minirun("rm", "-f", "c2", check=True)


def test_random_host_port(host):
    web(host, "r", "-p", "80")
    line = host.minirun("port", "r", check=True).stdout.strip()
    assert line.startswith("80/tcp -> 0.0.0.0:")
    port = int(line.rsplit(":", 1)[1])
    wait_http(host, f"http://127.0.0.1:{port}/", "r")
    host.minirun("rm", "-f", "r", check=True)


def test_static_ip(host):
    host.minirun("network", "ls", check=True)
    rec = web(host, "s", "--ip", "10.99.0.77")
    assert rec["network"]["ip"] == "10.99.0.77"
    res = host.minirun("run", "--rm", "--ip", "10.99.0.77", R, "true")
    assert res.returncode == 125 and "in use" in res.stderr
    host.minirun("rm", "-f", "s", check=True)


def test_address_not_reused_at_once(host):
    first = host.minirun("run", "--rm", R, "sh", "-c", "ip -4 -o addr show eth0").stdout
    second = host.minirun("run", "--rm", R, "sh", "-c", "ip -4 -o addr show eth0").stdout
    assert first.split()[3] != second.split()[3]


@pytest.mark.parametrize("fw", BACKENDS)
def test_twenty_in_parallel(host, fw):
    n = 20
    procs = [host.popen([sys.executable, "-m", "minirun",
                         "--firewall", fw, "run", "-d", "--name", f"p{i}", "-p", f"{9100 + i}:80",
                         R, "sh", "-c", f"echo p{i} > /var/www/index.html; "
                                        "exec httpd -f -p 80 -h /var/www"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(n)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    ips = {host.record(f"p{i}")["network"]["ip"]
           for i in range(n)}
    assert len(ips) == n
    for i in range(n):
        wait_http(host, f"http://127.0.0.1:{9100 + i}/", f"p{i}")
    host.minirun("--firewall", fw, "rm", "-f", *[f"p{i}" for i in range(n)], check=True)


@pytest.mark.parametrize("detached", [False, True])
def test_sigkill_mid_start_then_reclaim(host, detached):
    """SIGKILL `minirun run` at random points of start-up; reclaim; every kind of object
    then equals the number of live containers, and after rm, the baseline."""
    import random
    rng = random.Random(7 + detached)
    for i in range(10):
        p = host.popen([sys.executable, "-m", "minirun", "run", *(["-d"] if detached else []),
                        "--name", f"k{i}", "-p", f"{9200 + i}:80", R, "sleep", "1000"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, 0.35))
        p.kill()
        p.wait()
    time.sleep(0.5)  # detached starts carry on in their monitor process
    host.minirun("system", "prune", check=True)
    alive = [l.split()[-1] for l in host.minirun("ps", check=True).stdout.splitlines()[1:]]
    inv = host.inventory()
    n = len(alive)
    assert len([l for l in inv["links"] if l.startswith("veth")]) == n
    assert len(inv["netns"]) == n and int(inv["mounts"]) == n
    assert len([r for r in inv["records"] if "/ipam/" in r and "owner-" not in r]) == n
    assert len([r for r in inv["records"] if "/ipam/owner-" in r]) == n
    assert len([r for r in inv["records"] if "/ports/" in r]) == n
    assert len([r for r in inv["records"] if r.endswith("state.json")]) >= n
    assert inv["nft"].count("comment") - inv["nft"].count(':bridge"') == n
    for name in alive:
        assert host.minirun("exec", name, "true").returncode == 0
    host.minirun("rm", "-f", "--all", check=True)


@pytest.mark.parametrize("fw", BACKENDS)
def test_forward_policy_drop_still_flows(host, lan, fw):
    """A host whose iptables FORWARD policy is DROP: published ports and egress still work,
    and the host's own policy and rules are kept."""
    host.sh("iptables -P FORWARD DROP && iptables -A FORWARD -s 192.0.2.99 -j ACCEPT")
    try:
        web(host, "web", "-p", "8080:80", fw=fw)
        wait_http(host, f"http://{HOST_IP}:8080/", "web", netns="lan")
        res = host.minirun("--firewall", fw, "run", "--rm", "--init", R, "timeout", "5", "wget",
                           "-qO-", f"http://{LAN_IP}:8000/")
        assert res.stdout.strip() == "lan host", res.stderr
        rules = host.sh("iptables -S FORWARD")
        assert "-P FORWARD DROP" in rules and "192.0.2.99" in rules
        host.minirun("--firewall", fw, "rm", "-f", "web", check=True)
        rules = host.sh("iptables -S FORWARD")
        assert "MINIRUN" not in rules and "192.0.2.99" in rules
    finally:
        host.sh("iptables -F FORWARD && iptables -P FORWARD ACCEPT")


def test_admin_user_chain_filters_published_ports(host, lan):
    web(host, "web", "-p", "8080:80")
    wait_http(host, f"http://{HOST_IP}:8080/", "web", netns="lan")
    host.sh(f"nft add rule ip minirun user ip saddr {LAN_IP} meta l4proto tcp ct original proto-dst 8080 drop")
    assert curl(host, f"http://{HOST_IP}:8080/", netns="lan", timeout=1) is None
    wait_http(host, "http://127.0.0.1:8080/", "web")  # others still get through
    host.minirun("rm", "-f", "web", check=True)
    assert "proto-dst 8080" in host.sh("nft list chain ip minirun user")
    host.sh("nft delete table ip minirun")


def test_after_a_reboot_stale_leases_are_free(host):
    """Records in the persistent root survive a reboot; processes, kernel objects and the
    volatile run root do not. The next start must not trip over the old leases."""
    host.minirun("network", "ls", check=True)
    rec = web(host, "old", "--ip", "10.99.0.50", "-p", "8080:80")
    # the "reboot": every process and kernel object gone, /run wiped
    monitor = host.sh(f"pgrep -f 'minirun-monitor.*{rec['id']}' || true").split()
    for pid in monitor + [str(rec["pid"])]:
        host.run(f"kill -9 {pid}")
    host.sh(f"ip link del {rec['network']['veth']}; ip netns del old; ip link del minirun0; "
            f"nft delete table ip minirun; rm -rf {host.runroot}")
    lease = host.root / "networks" / "bridge" / "ipam" / "10.99.0.50"
    data = json.loads(lease.read_text())
    lease.write_text(json.dumps(dict(data, boot_id="a-previous-boot")))
    new = web(host, "new", "--ip", "10.99.0.50", "-p", "8080:80")
    assert new["network"]["ip"] == "10.99.0.50"
    wait_http(host, "http://127.0.0.1:8080/", "new")
    assert "old" in host.minirun("ps", "-a", check=True).stdout
    host.minirun("rm", "-f", "old", "new", check=True)


def test_network_prune_keeps_used_and_default(host):
    host.minirun("network", "create", "idle", check=True)
    host.minirun("network", "create", "busy", check=True)
    web(host, "b", net_args=("--network", "busy"))
    assert host.minirun("network", "prune", check=True).stdout.split() == ["idle"]
    names = [l.split()[0] for l in host.minirun("network", "ls", check=True).stdout.splitlines()]
    assert names[1:] == ["bridge", "busy"]
    host.minirun("rm", "-f", "b", check=True)
    host.minirun("network", "rm", "busy", check=True)


def test_someone_elses_bridge_is_not_used(host):
    host.sh("ip link add minirun0 type bridge && ip addr add 203.0.113.1/24 dev minirun0")
    res = host.minirun("run", "--rm", R, "true")
    assert res.returncode == 125 and "not minirun's" in res.stderr
    assert "203.0.113.1" in host.sh("ip -o addr show minirun0")
    host.sh("ip link del minirun0")


def _netns_dir_mount(host) -> str:
    """The mount at /run/netns itself, as `findmnt` shows it ('' for a plain directory)."""
    return host.run("findmnt -n -o TARGET,PROPAGATION --mountpoint /run/netns").stdout.strip()


def test_netns_names_cannot_be_hidden_by_a_later_bind_of_run_netns(host):
    """/run/netns as a fresh host has it: a plain directory. minirun makes it a mount point
    of its own before the first name (as `ip netns add` and podman do), so a tool arriving
    later finds a mount point and binds nothing over the names (a bind made after a name
    hid it: its delete failed, the namespace leaked). The mount goes with the last name --
    not while an administrator's name is in it -- and only if it is minirun's."""
    # a /run of its own, so that /run/netns is a plain directory (the harness mounts a tmpfs
    # on /run/netns) and the real host's /run is not touched
    host.sh("umount /run/netns && mount -t tmpfs -o mode=755 tmpfs /run && mkdir /run/netns")
    assert _netns_dir_mount(host) == ""
    web(host, "c1")
    assert _netns_dir_mount(host).split() == ["/run/netns", "shared"]
    # podman and `ip netns add` bind /run/netns over itself only where it is no mount point
    host.sh("ip netns add adm")
    assert host.sh("findmnt -n -o TARGET /run/netns | wc -l").strip() == "1"
    host.minirun("rm", "-f", "c1", check=True)
    assert host.sh("ip netns").split() == ["adm"]  # c1's name really went
    assert _netns_dir_mount(host) != ""  # the administrator's name is still in it
    web(host, "c2")
    host.sh("ip netns delete adm")
    host.minirun("rm", "-f", "c2", check=True)
    assert host.sh("ls -A /run/netns").strip() == ""
    assert _netns_dir_mount(host) == ""  # the last name went, and minirun's mount with it
    # a mount point that was there before is used as it is and never removed
    host.sh("mount -t tmpfs -o mode=755 tmpfs /run/netns")
    web(host, "c3")
    host.minirun("rm", "-f", "c3", check=True)
    assert _netns_dir_mount(host).split()[0] == "/run/netns"
