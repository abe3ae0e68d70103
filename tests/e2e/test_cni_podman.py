"""Acceptance: podman with its CNI backend runs a container on a minirun-cni network.

podman (Debian's, 4.3) gets a containers.conf of the test's own (CONTAINERS_CONF:
`network_backend = "cni"`, the plugin and configuration directories of the test),
its own storage and run roots, and `--rootfs` (no image); the conflist names
`minirun-cni` (a two-line wrapper running `python -m minirun.cni.plugin` from this
checkout). The published port answers from the host (127.0.0.1 and its address)
and from a LAN-host namespace; `podman rm` leaves nothing of minirun's (the `host`
fixture checks links, rules, namespaces and the plugin's records under the
host's state root).

runc, not crun: Debian 12's crun refuses this machine's hybrid cgroup layout. The
rlimits are lowered explicitly: podman's defaults (nofile 1048576) are above the
hard limits here, and raising them needs CAP_SYS_RESOURCE.
"""
import shutil

import pytest

from harness import ROOTFS, podman_on_minirun_cni

pytestmark = pytest.mark.skipif(
    not (shutil.which("podman") and shutil.which("runc") and shutil.which("conmon")),
    reason="podman, conmon and runc are not installed (apt-get install podman runc)")

HOST_IP, LAN_IP = "198.51.100.1", "198.51.100.2"



@pytest.fixture
def podman(host):
    base = podman_on_minirun_cni(host, "mrnet", "mrpod0")
    host.add_lan_host(HOST_IP, LAN_IP)

    def run(*args):
        return host.run(base + list(args), timeout=120)
    try:
        yield run
    finally:
        run("rm", "-f", "-t", "0", "--all")
        host.remove_lan_host()


def test_podman_cni_backend(host, podman):
    res = podman("run", "-d", "--name", "pweb", "--network", "mrnet", "-p", "18085:80",
                 "--hostname", "podweb", "--runtime", "runc", "--ulimit", "nofile=1024:1024",
                 "--ulimit", "nproc=4096:4096", "--rootfs", f"{ROOTFS}:O",
                 "httpd", "-f", "-p", "80", "-h", "/etc")
    assert res.returncode == 0, res.stderr
    assert "minirun-cni container" in host.sh("ip -o link")
    for probe in ("curl -sf -m1 http://127.0.0.1:18085/hostname",
                  f"curl -sf -m1 http://{HOST_IP}:18085/hostname",
                  f"ip netns exec lan curl -sf -m1 http://{HOST_IP}:18085/hostname"):
        host.wait_for(probe, timeout=15)
        assert host.sh(probe).strip() == "podweb"
    res = podman("rm", "-f", "-t", "0", "pweb")
    assert res.returncode == 0, res.stderr
    assert "mrpod0" not in host.sh("ip -o link")
