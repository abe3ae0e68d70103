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
import json
import shutil
import sys
import time

import pytest

from harness import PROJECT, ROOTFS

pytestmark = pytest.mark.skipif(
    not (shutil.which("podman") and shutil.which("runc") and shutil.which("conmon")),
    reason="podman, conmon and runc are not installed (apt-get install podman runc)")

HOST_IP, LAN_IP = "198.51.100.1", "198.51.100.2"


def wait_for(host, probe, timeout=15):
    deadline = time.monotonic() + timeout
    while host.run(probe).returncode != 0:
        assert time.monotonic() < deadline, f"timed out: {probe}"
        time.sleep(0.05)


@pytest.fixture
def podman(host):
    d = host.dir
    (d / "cni-plugins").mkdir()
    (d / "net.d").mkdir()
    wrapper = d / "cni-plugins" / "minirun-cni"
    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={PROJECT} exec {sys.executable} "
                       "-m minirun.cni.plugin\n")
    wrapper.chmod(0o755)
    (d / "net.d" / "mrnet.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": "mrnet",
        "plugins": [{"type": "minirun-cni", "bridge": "mrpod0", "subnet": "203.0.113.0/24",
                     "dataDir": str(host.root / "cni"), "runDir": str(host.runroot / "cni"),
                     "capabilities": {"portMappings": True}}]}))
    (d / "containers.conf").write_text(f"""\
[network]
network_backend = "cni"
cni_plugin_dirs = ["{d}/cni-plugins"]
network_config_dir = "{d}/net.d"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{d}/podman-tmp"
""")
    host.sh(f"""
        ip netns add lan
        ip link add lan0 type veth peer name eth0 netns lan
        ip addr add {HOST_IP}/24 dev lan0 && ip link set lan0 up
        ip -n lan addr add {LAN_IP}/24 dev eth0 && ip -n lan link set eth0 up
        ip -n lan link set lo up
    """)
    base = ["env", f"CONTAINERS_CONF={d}/containers.conf", "podman", "--root",
            str(d / "podman-root"), "--runroot", str(d / "podman-run"), "--storage-driver",
            "vfs"]

    def run(*args):
        return host.run(base + list(args), timeout=120)
    try:
        yield run
    finally:
        run("rm", "-f", "-t", "0", "--all")
        host.run("ip link del lan0; ip netns del lan")


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
        wait_for(host, probe)
        assert host.sh(probe).strip() == "podweb"
    res = podman("rm", "-f", "-t", "0", "pweb")
    assert res.returncode == 0, res.stderr
    assert "mrpod0" not in host.sh("ip -o link")
