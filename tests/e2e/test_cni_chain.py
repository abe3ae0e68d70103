"""`minirun run --network cni:NAME` with Debian's containernetworking-plugins: a
bridge + host-local + portmap chain, as podman's CNI backend would run it.

    [netns lan] 198.51.100.2 --veth-- 198.51.100.1 [test host] --bridge cnibr0-- [container]

The chain's network-wide objects (the bridge plugin's bridge, portmap's top-level
CNI-HOSTPORT-* chains) are the plugins' and stay after DEL, as they do under podman;
the test checks that everything of the container is gone (veth, the lease, the
per-container NAT chains, the namespace name, minirun's records) and then removes
the plugins' leftovers itself so the `host` fixture can check for leaks.
"""
import json
import os

import pytest

from harness import MINIRUN, ROOTFS

PLUGINS = "/usr/lib/cni"
pytestmark = pytest.mark.skipif(
    not all(os.access(f"{PLUGINS}/{p}", os.X_OK) for p in ("bridge", "host-local", "portmap")),
    reason="Debian's containernetworking-plugins (bridge, host-local, portmap) are not "
           "installed in /usr/lib/cni (scripts/setup installs them)")

HOST_IP, LAN_IP = "198.51.100.1", "198.51.100.2"
SUBNET, GATEWAY = "203.0.113.0/24", "203.0.113.1"



@pytest.fixture
def cnienv(host, tmp_path):
    confdir, leases = tmp_path / "net.d", tmp_path / "leases"
    confdir.mkdir()
    (confdir / "10-cnibr.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": "cnibr",
        "plugins": [
            {"type": "bridge", "bridge": "cnibr0", "isGateway": True, "ipMasq": True,
             "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": SUBNET,
                                                          "gateway": GATEWAY}]],
                      "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(leases)}},
            {"type": "portmap", "capabilities": {"portMappings": True}}]}))
    host.add_lan_host(HOST_IP, LAN_IP)
    env = [f"MINIRUN_CNI_CONFIG_DIR={confdir}", f"MINIRUN_CNI_PLUGIN_DIR={PLUGINS}"]

    def minirun(*args):
        return host.run(["env"] + env + MINIRUN + list(args))
    try:
        yield minirun, leases
    finally:
        host.remove_lan_host()
        # the plugins' network-wide leftovers (not minirun's; podman leaves them too)
        host.run("ip link del cnibr0; iptables -t nat -F; iptables -t nat -X")


def _leases(leases):
    d = leases / "cnibr"
    return sorted(p.name for p in d.iterdir()
                  if p.name not in ("lock",) and not p.name.startswith("last_reserved")) \
        if d.exists() else []


def test_cni_chain_publishes_and_cleans_up(host, cnienv):
    minirun, leases = cnienv
    res = minirun("run", "-d", "--name", "web", "--network", "cni:cnibr", "-p", "18090:80",
                  str(ROOTFS), "sh", "-c",
                  "echo web > /var/www/index.html; exec httpd -f -p 80 -h /var/www")
    assert res.returncode == 0, res.stderr
    info = json.loads(minirun("inspect", "web").stdout)
    info = info[0] if isinstance(info, list) else info
    assert "203.0.113." in json.dumps(info)
    assert "default via 203.0.113.1" in host.sh("ip -n web route")
    assert "inet 203.0.113." in host.sh("ip -n web -4 addr show eth0")
    assert len(_leases(leases)) == 1
    for probe in (f"curl -sf -m1 http://{HOST_IP}:18090/",
                  f"ip netns exec lan curl -sf -m1 http://{HOST_IP}:18090/"):
        host.wait_for(probe)
        assert host.sh(probe) == "web\n"
    assert "CNI-DN-" in host.sh("iptables-save -t nat")

    res = minirun("rm", "-f", "web")
    assert res.returncode == 0, res.stderr
    assert _leases(leases) == []
    nat = host.sh("iptables-save -t nat")
    assert "CNI-DN-" not in nat and "203.0.113." not in nat, nat
    links = host.sh("ip -o link show | awk -F': ' '{print $2}'").split()
    assert not [link for link in links if link.startswith("veth")], links


def test_cni_chain_bad_input(host, cnienv):
    minirun, _ = cnienv
    res = minirun("run", "--network", "cni:nosuch", str(ROOTFS), "true")
    assert res.returncode == 125 and "no CNI network named 'nosuch'" in res.stderr
    res = minirun("run", "--network", "cni:", str(ROOTFS), "true")
    assert res.returncode == 125


def test_cni_dirs_as_flags(host, cnienv, tmp_path):
    """--cni-config-dir / --cni-plugin-dir, as podman names them, instead of the
    environment: a conflist in another directory is found, a plugin directory without
    the plugins is refused before anything is made."""
    confdir = tmp_path / "net.d"  # the fixture's
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "cnibr2.conflist").write_text(
        (confdir / "10-cnibr.conflist").read_text().replace('"cnibr"', '"cnibr2"'))
    res = host.run(MINIRUN + ["--cni-config-dir", str(other), "--cni-plugin-dir",
                              str(other), "run", "--rm", "--network", "cni:cnibr2",
                              str(ROOTFS), "true"])
    assert res.returncode == 125 and "plugin" in res.stderr, res.stderr
    res = host.run(MINIRUN + ["--cni-config-dir", str(other), "--cni-plugin-dir", PLUGINS,
                              "run", "--rm", "--network", "cni:cnibr2", str(ROOTFS),
                              "sh", "-c", "ip -4 addr show eth0"])
    assert res.returncode == 0, res.stderr
    assert "inet 203.0.113." in res.stdout


def test_cni_chain_static_ip_and_failed_add(host, cnienv):
    """--ip becomes the IP CNI_ARG (host-local honours it); a chain whose ADD fails (an
    address outside the range) is DELeted whole, and the start fails with exit 125."""
    minirun, leases = cnienv
    res = minirun("run", "--rm", "--network", "cni:cnibr", "--ip", "203.0.113.77", str(ROOTFS),
                  "ip", "-4", "addr", "show", "eth0")
    assert res.returncode == 0, res.stderr
    assert "inet 203.0.113.77/24" in res.stdout
    assert _leases(leases) == []
    res = minirun("run", "--network", "cni:cnibr", "--ip", "192.0.2.9", str(ROOTFS), "true")
    assert res.returncode == 125 and "CNI plugin bridge ADD failed" in res.stderr, res.stderr
    print(res.stderr)
    assert _leases(leases) == []


def test_cni_chain_explain_only_creates_nothing(host, cnienv):
    minirun, leases = cnienv
    res = minirun("--explain=only", "run", "--network", "cni:cnibr", "-p", "18090:80",
                  str(ROOTFS), "true")
    assert res.returncode == 0, res.stderr
    assert "CNI_COMMAND=ADD" in res.stderr and "/usr/lib/cni/portmap" in res.stderr, res.stderr
    assert '"portMappings": [{"hostPort": 18090' in res.stderr
    assert _leases(leases) == []
    assert host.run("ip link show cnibr0").returncode != 0
