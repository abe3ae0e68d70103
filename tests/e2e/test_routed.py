"""Routed networks ("give away the identity") end to end, both firewall backends.

    [second host netns "far"] 198.51.100.2 --veth-- 198.51.100.1 [test host] --bridge-- containers
                              ip route add SUBNET via 198.51.100.1   (its only help)

On a `routed` network the second host reaches a container's PUBLISHED port at the
container's own address and the container sees the second host's real address;
unpublished ports stay closed (Docker 28's `routed`); `nat-unprotected` opens
them; egress from a routed network is not masqueraded, from a NAT network it is.
Each container runs busybox httpd with a CGI script echoing REMOTE_ADDR, on port
80 (published) and 81 (not published).
"""
import json
import textwrap

import pytest

from harness import ROOTFS

R = str(ROOTFS)
HOST_IP = "198.51.100.1"
FAR_IP = "198.51.100.2"
SUBNET = "192.0.2.0/24"
BACKENDS = ["nftables", "iptables"]

CGI = "#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $REMOTE_ADDR\\n"
SERVE = (f"mkdir -p /w/cgi-bin && printf '{CGI}' > /w/cgi-bin/ip && chmod +x /w/cgi-bin/ip && "
         "httpd -p 81 -h /w && exec httpd -f -p 80 -h /w")


@pytest.fixture
def far(host, tmp_path):
    """The second host: its own httpd (CGI echoing the client's address), and nothing but
    a route to the containers' subnet via the test host."""
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
    host.add_lan_host(HOST_IP, FAR_IP, "far")
    host.sh(f"ip -n far route add {SUBNET} via {HOST_IP}")
    server = host.popen(["ip", "netns", "exec", "far", "busybox", "httpd", "-f", "-p", "8000",
                         "-h", str(www)])
    try:
        wait(host, f"ip netns exec far curl -sf -m1 http://{FAR_IP}:8000/cgi-bin/ip")
        yield
    finally:
        server.kill()
        server.wait()
        host.remove_lan_host("far")


def wait(host, probe, timeout=10):
    host.wait_for(probe, timeout)


def plain(addr: str) -> str:
    """busybox httpd listens on a dual-stack socket: [::ffff:198.51.100.2] -> 198.51.100.2"""
    return addr.strip().removeprefix("[::ffff:").removesuffix("]")


def from_far(host, url, timeout=2):
    res = host.run(f"ip netns exec far curl -s -m {timeout} {url}")
    return plain(res.stdout) if res.returncode == 0 else None


def start(host, fw, net, name="web"):
    host.minirun("--firewall", fw, "run", "-d", "--name", name, "--network", net,
                 "-p", "8080:80", R, "sh", "-c", SERVE, check=True)
    ip = host.record(name)["network"]["ip"]
    # ready: both servers answer from the host itself
    wait(host, f"curl -sf -m1 http://{ip}:80/cgi-bin/ip && curl -sf -m1 http://{ip}:81/cgi-bin/ip")
    return ip


def egress_source(host, name):
    res = host.minirun("exec", name, "timeout", "3", "wget", "-qO-",
                       f"http://{FAR_IP}:8000/cgi-bin/ip")
    assert res.returncode == 0, res.stderr
    return plain(res.stdout)


def create(host, fw, *args):
    host.minirun("--firewall", fw, "network", "create", "--subnet", SUBNET, *args, "n",
                 check=True)


@pytest.mark.parametrize("fw", BACKENDS)
def test_routed_published_port_at_the_containers_own_address(host, far, fw):
    create(host, fw, "--routed")
    [info] = json.loads(host.minirun("network", "inspect", "n", check=True).stdout)
    assert info["Options"]["com.docker.network.bridge.gateway_mode_ipv4"] == "routed"
    assert "routed" in host.minirun("network", "ls", check=True).stdout
    try:
        ip = start(host, fw, "n")
        # the published container port, at the container's address, from the other host;
        # the container sees the other host's real address
        assert from_far(host, f"http://{ip}:80/cgi-bin/ip") == FAR_IP
        # an unpublished port is not reachable by routing
        assert from_far(host, f"http://{ip}:81/cgi-bin/ip") is None
        # the published host port still works, through the host's address
        assert from_far(host, f"http://{HOST_IP}:8080/cgi-bin/ip") == FAR_IP
        # egress is not masqueraded: the other host sees the container's address
        assert egress_source(host, "web") == ip
    finally:
        host.minirun("rm", "-f", "web")
        host.minirun("network", "rm", "n", check=True)


@pytest.mark.parametrize("fw", BACKENDS)
def test_nat_unprotected_opens_every_port(host, far, fw):
    create(host, fw, "-o", "com.docker.network.bridge.gateway_mode_ipv4=nat-unprotected")
    try:
        ip = start(host, fw, "n")
        assert from_far(host, f"http://{ip}:81/cgi-bin/ip") == FAR_IP
        assert from_far(host, f"http://{ip}:80/cgi-bin/ip") == FAR_IP
        assert egress_source(host, "web") == HOST_IP  # NAT on the way out
    finally:
        host.minirun("rm", "-f", "web")
        host.minirun("network", "rm", "n", check=True)


@pytest.mark.parametrize("fw", BACKENDS)
def test_nat_network_masquerades_and_refuses_routed_access(host, far, fw):
    create(host, fw)
    [info] = json.loads(host.minirun("network", "inspect", "n", check=True).stdout)
    assert info["Options"]["com.docker.network.bridge.gateway_mode_ipv4"] == "nat"
    try:
        ip = start(host, fw, "n")
        assert egress_source(host, "web") == HOST_IP
        assert from_far(host, f"http://{ip}:80/cgi-bin/ip") is None
        assert from_far(host, f"http://{HOST_IP}:8080/cgi-bin/ip") == FAR_IP
    finally:
        host.minirun("rm", "-f", "web")
        host.minirun("network", "rm", "n", check=True)


@pytest.mark.parametrize("opt", ["foo=bar", "com.docker.network.bridge.gateway_mode_ipv4=isolated",
                                 "com.docker.network.bridge.gateway_mode_ipv4=fast", "novalue"])
def test_bad_options_are_refused_creating_nothing(host, opt):
    before = host.inventory()
    res = host.minirun("network", "create", "-o", opt, "n")
    assert res.returncode == 125 and res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.startswith("minirun: ")
    assert host.minirun("network", "inspect", "n").returncode != 0
    assert host.inventory() == before
