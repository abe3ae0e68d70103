"""minirun-cni end to end: a CNI runtime's view, fed by hand as any runtime would feed it.

    [netns lan] 198.51.100.2 --veth-- 198.51.100.1 [test host] --bridge mrcni0-- [netns c1]

The test makes the container's namespace itself (`ip netns add c1`, as a runtime does),
gives the plugin the spec's environment and the configuration on stdin, and checks
the result, the namespace, a published port from the host and from the LAN, CHECK,
DEL (twice), and DEL after the namespace is gone; the `host` fixture checks that
nothing is left.
"""
import json
import sys

import pytest

from harness import PROJECT

PLUGIN = [sys.executable, "-m", "minirun.cni.plugin"]
SUBNET, GATEWAY = "203.0.113.0/24", "203.0.113.1"
HOST_IP, LAN_IP = "198.51.100.1", "198.51.100.2"


def conf(host, **extra):
    c = {"cniVersion": "1.0.0", "name": "cnitest", "type": "minirun-cni",
         "bridge": "mrcni0", "subnet": SUBNET, "gateway": GATEWAY, "mode": "nat",
         "dataDir": str(host.root / "cni"), "runDir": str(host.runroot / "cni"),
         "dns": {"nameservers": ["192.0.2.53"]},
         "capabilities": {"portMappings": True}}
    c.update(extra)
    return c


def cni(host, command, config, container="ctr1", netns="/run/netns/c1", ifname="eth0"):
    env = [f"CNI_COMMAND={command}", f"CNI_CONTAINERID={container}", f"CNI_NETNS={netns}",
           f"CNI_IFNAME={ifname}", "CNI_ARGS=", f"CNI_PATH={PROJECT}"]
    res = host.run(["env"] + env + PLUGIN, input=json.dumps(config))
    out = json.loads(res.stdout) if res.stdout.strip() else None
    return res.returncode, out, res.stderr



@pytest.fixture
def lan(host):
    host.add_lan_host(HOST_IP, LAN_IP)
    try:
        yield
    finally:
        host.remove_lan_host()


@pytest.mark.parametrize("firewall", ["nftables", "iptables"])
def test_add_check_del(host, lan, tmp_path, firewall):
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello from c1\n")
    host.sh("ip netns add c1")
    cfg = conf(host, firewall=firewall, runtimeConfig={"portMappings": [
        {"hostPort": 18080, "containerPort": 80, "protocol": "tcp", "hostIP": ""}]})
    server = None
    try:
        rc, out, err = cni(host, "ADD", cfg)
        assert rc == 0, (out, err)
        assert out["cniVersion"] == "1.0.0"
        br, veth, inner = out["interfaces"]
        assert br["name"] == "mrcni0" and veth["name"].startswith("veth")
        assert inner == {"name": "eth0", "mac": inner["mac"], "sandbox": "/run/netns/c1"}
        (ip,) = out["ips"]
        assert ip["gateway"] == GATEWAY and ip["interface"] == 2
        assert ip["address"].startswith("203.0.113.") and ip["address"].endswith("/24")
        assert out["routes"] == [{"dst": "0.0.0.0/0", "gw": GATEWAY}]
        assert out["dns"] == {"nameservers": ["192.0.2.53"]}
        addr = ip["address"].split("/")[0]
        assert f"inet {ip['address']}" in host.sh("ip -n c1 -4 addr show eth0")
        assert inner["mac"] in host.sh("ip -n c1 link show eth0")
        assert f"default via {GATEWAY} dev eth0" in host.sh("ip -n c1 route")

        server = host.popen(["ip", "netns", "exec", "c1", "busybox", "httpd", "-f", "-p", "80",
                             "-h", str(www)])
        host.wait_for(f"curl -sf -m1 http://{addr}:80/")
        for url in ("http://127.0.0.1:18080/", f"http://{HOST_IP}:18080/"):
            host.wait_for(f"curl -sf -m1 {url}")
            assert host.sh(f"curl -sf -m2 {url}") == "hello from c1\n"
        host.wait_for(f"ip netns exec lan curl -sf -m1 http://{HOST_IP}:18080/")
        assert host.sh(f"ip netns exec lan curl -sf -m2 http://{HOST_IP}:18080/") == \
            "hello from c1\n"

        rc, out, err = cni(host, "CHECK", cfg)
        assert (rc, out) == (0, None), (out, err)
        rc, out, _ = cni(host, "ADD", cfg)  # ADD twice without DEL: refused
        assert rc != 0 and out["code"] == 100

        for _ in range(2):  # idempotent
            rc, out, err = cni(host, "DEL", cfg)
            assert (rc, out) == (0, None), (out, err)
        assert "eth0" not in host.sh("ip -n c1 link")
        assert host.run("ip link show mrcni0").returncode != 0
        rc, out, _ = cni(host, "CHECK", cfg)
        assert rc != 0 and out["code"] == 3

        # again, and this time the namespace goes first
        rc, out, err = cni(host, "ADD", cfg)
        assert rc == 0, (out, err)
        server.kill()
        server.wait()
        server = None
        host.sh("ip netns del c1")
        for _ in range(2):
            rc, out, err = cni(host, "DEL", cfg, netns="")
            assert (rc, out) == (0, None), (out, err)
    finally:
        if server is not None:
            server.kill()
            server.wait()
        host.run("ip netns del c1")


def test_gc_removes_stale_attachments(host):
    host.sh("ip netns add c1; ip netns add c2")
    try:
        cfg = conf(host)
        assert cni(host, "ADD", cfg, container="a")[0] == 0
        assert cni(host, "ADD", cfg, container="b", netns="/run/netns/c2")[0] == 0
        gc = conf(host, cniVersion="1.1.0",
                  **{"cni.dev/valid-attachments": [{"containerID": "b", "ifname": "eth0"}]})
        rc, out, err = cni(host, "GC", gc)
        assert (rc, out) == (0, None), (out, err)
        assert "eth0" not in host.sh("ip -n c1 link")
        assert "eth0" in host.sh("ip -n c2 link")
        assert cni(host, "STATUS", gc)[:2] == (0, None)
        assert cni(host, "DEL", cfg, container="b", netns="/run/netns/c2")[0] == 0
    finally:
        host.run("ip netns del c1; ip netns del c2")


def test_errors(host):
    rc, out, _ = cni(host, "VERSION", {"cniVersion": "1.0.0"})
    assert rc == 0 and "1.1.0" in out["supportedVersions"] and out["cniVersion"] == "1.0.0"
    rc, out, _ = cni(host, "ADD", conf(host, subnet="nonsense"))
    assert rc != 0 and out["code"] == 4 and "subnet" in out["msg"]
    rc, out, _ = cni(host, "ADD", conf(host), container="")
    assert rc != 0 and out["code"] == 7
    rc, out, _ = cni(host, "ADD", conf(host), netns="/run/netns/nosuch")
    assert rc != 0 and out["code"] == 7
    rc, out, _ = cni(host, "ADD", conf(host, cniVersion="9.9.9"))
    assert rc != 0 and out["code"] == 1
    rc, out, _ = cni(host, "DEL", conf(host), container="never-added")
    assert (rc, out) == (0, None)
