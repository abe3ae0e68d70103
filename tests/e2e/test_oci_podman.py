"""Acceptance: podman (Debian's 4.3, through conmon) drives minirun-oci as its runtime.

`--runtime` names a two-line wrapper running `python -m minirun.oci --root <host's run
root>/oci` from this checkout, so the runtime's state is counted by the `host` fixture.
The network is minirun's CNI plugin (podman's CNI backend, as in test_cni_podman.py):
everything that could be left behind is minirun's and counted. podman's defaults
(nofile 1048576) are above this machine's hard limits, so the rlimits are given.
"""
import glob
import json
import os
import shutil
import sys

import pytest

from harness import PROJECT, ROOTFS, podman_on_minirun_cni

pytestmark = pytest.mark.skipif(
    not (shutil.which("podman") and shutil.which("conmon")),
    reason="podman and conmon are not installed (apt-get install podman)")

ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]



def oci_wrapper(host, path):
    """An executable that runs this checkout's minirun-oci with the host's state root."""
    path.write_text(f"#!/bin/sh\nPYTHONPATH={PROJECT} exec {sys.executable} -m minirun.oci "
                    f"--root {host.runroot}/oci \"$@\"\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def podman(host):
    runtime = oci_wrapper(host, host.dir / "minirun-oci")
    base = podman_on_minirun_cni(host, "ocinet", "ocipod0", default=True,
                                 runtime=str(runtime))

    def run(*args, timeout=120):
        return host.run(base + list(args), timeout=timeout)
    try:
        yield run
    finally:
        run("rm", "-f", "-t", "0", "--all")


def container_cgroups(cid: str) -> list[str]:
    return glob.glob(f"/sys/fs/cgroup/*/libpod_parent/libpod-{cid}")


def test_podman_run_rm_true(host, podman):
    res = podman("run", "--rm", *ULIMITS, "--rootfs", f"{ROOTFS}:O", "/bin/true")
    assert res.returncode == 0, res.stderr
    res = podman("run", "--rm", *ULIMITS, "--rootfs", f"{ROOTFS}:O", "sh", "-c", "exit 3")
    assert res.returncode == 3, res.stderr
    assert podman("ps", "-aq").stdout.strip() == ""


def test_podman_detached_web_exec_logs_stop_rm(host, podman):
    res = podman("run", "-d", "--name", "ociweb", "--network", "ocinet", "-p", "18080:80",
                 "--hostname", "ociweb", *ULIMITS, "--rootfs", f"{ROOTFS}:O",
                 "sh", "-c", "echo started; echo to-stderr >&2; exec httpd -f -p 80 -h /etc")
    assert res.returncode == 0, res.stderr
    cid = res.stdout.strip()
    assert len(container_cgroups(cid)) > 0
    host.wait_for("curl -sf -m1 http://127.0.0.1:18080/hostname", timeout=15)
    assert host.sh("curl -sf -m1 http://127.0.0.1:18080/hostname").strip() == "ociweb"

    res = podman("exec", "ociweb", "sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n")[0] == "ociweb"
    assert "httpd -f -p 80" in res.stdout
    res = podman("exec", "ociweb", "sh", "-c", "exit 7")
    assert res.returncode == 7
    res = podman("exec", "-t", "ociweb", "tty")
    assert res.returncode == 0 and res.stdout.strip().startswith("/dev/pts/"), res

    logs = podman("logs", "ociweb")
    assert "started" in logs.stdout and "to-stderr" in logs.stdout + logs.stderr

    state = host.run([str(host.dir / "minirun-oci"), "state", cid])
    assert json.loads(state.stdout)["status"] == "running", state.stderr

    assert podman("pause", "ociweb").returncode == 0   # the v1 freezer
    out = podman("inspect", "ociweb", "--format", "{{.State.Status}}").stdout.strip()
    assert out == "paused"
    assert podman("unpause", "ociweb").returncode == 0
    assert host.sh("curl -sf -m1 http://127.0.0.1:18080/hostname").strip() == "ociweb"

    # httpd as PID 1 has no SIGTERM handler: podman stop ends with SIGKILL (137)
    res = podman("stop", "-t", "1", "ociweb")
    assert res.returncode == 0, res.stderr
    out = podman("inspect", "ociweb", "--format", "{{.State.ExitCode}} {{.State.Status}}")
    assert out.stdout.split() == ["137", "exited"]
    res = podman("rm", "ociweb")
    assert res.returncode == 0, res.stderr
    assert container_cgroups(cid) == []
    assert not os.listdir(host.runroot / "oci")
    assert "ocipod0" not in host.sh("ip -o link")


def test_podman_stop_exit_code_of_a_handled_sigterm(host, podman):
    res = podman("run", "-d", "--name", "ocitrap", *ULIMITS, "--rootfs", f"{ROOTFS}:O",
                 "sh", "-c", "trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done")
    assert res.returncode == 0, res.stderr
    host.wait_for(f"grep -q ready {host.dir}/podman-root/vfs-containers/*/userdata/ctr.log",
                  timeout=15)
    res = podman("stop", "-t", "30", "ocitrap")
    assert res.returncode == 0, res.stderr
    out = podman("inspect", "ocitrap", "--format", "{{.State.ExitCode}}")
    assert out.stdout.strip() == "42"
    assert podman("rm", "ocitrap").returncode == 0
