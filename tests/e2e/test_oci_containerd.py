"""Acceptance: containerd (Debian's 1.6, its runc v2 shim) drives minirun-oci.

The test starts its own containerd inside the throwaway host: root, state, sockets and
config under the host's temp directory, the CRI plugin off, and a tmpfs on
/run/containerd (where the 1.6 shims put their sockets) in the host's own mount
namespace. `ctr run --runc-binary` names a wrapper running this checkout's
`python -m minirun.oci`; `--runc-root` puts the runtime's state under the host's run
root, where the `host` fixture counts it. containerd is stopped after the test.
"""
import glob
import shutil
import sys
import time

import pytest

from harness import PROJECT, ROOTFS

pytestmark = pytest.mark.skipif(
    not (shutil.which("containerd") and shutil.which("ctr")
         and shutil.which("containerd-shim-runc-v2")),
    reason="containerd is not installed (apt-get install containerd)")


@pytest.fixture
def ctr(host):
    d = host.dir / "ctd"
    d.mkdir()
    (d / "config.toml").write_text(f"""\
version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{d}/sock"
[ttrpc]
  address = "{d}/sock.ttrpc"
[debug]
  address = "{d}/debug.sock"
""")
    wrapper = host.dir / "minirun-oci"
    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={PROJECT} exec {sys.executable} -m minirun.oci "
                       "\"$@\"\n")
    wrapper.chmod(0o755)
    host.sh("mkdir -p /run/containerd && mount -t tmpfs -o mode=711 tmpfs /run/containerd")
    log = open(d / "containerd.log", "w")
    daemon = host.popen(["containerd", "--config", str(d / "config.toml")], stdout=log,
                        stderr=log)
    deadline = time.monotonic() + 20
    while not (d / "sock").exists():
        assert daemon.poll() is None, (d / "containerd.log").read_text()
        assert time.monotonic() < deadline, "containerd did not start"
        time.sleep(0.05)
    base = ["ctr", "--address", str(d / "sock")]
    runtime = ["--runc-binary", str(wrapper), "--runc-root", str(host.runroot / "oci")]

    def run(*args, timeout=60):
        args = list(args)
        if args[0] == "run":
            args[1:1] = runtime
        return host.run(base + args, timeout=timeout)
    try:
        yield run
    finally:
        for t in run("task", "ls", "-q").stdout.split():
            run("task", "kill", "-s", "SIGKILL", t)
            run("task", "rm", "-f", t)
        for c in run("container", "ls", "-q").stdout.split():
            run("container", "rm", c)
        daemon.terminate()
        daemon.wait(timeout=20)
        log.close()
        # The mount point stays (an empty directory, as Debian's package makes it): its
        # rmdir would detach the mounts other throwaway hosts may have on it.
        host.run("umount -l /run/containerd")


def test_ctr_run_rm_echo(host, ctr):
    res = ctr("run", "--rm", "--rootfs", str(ROOTFS), "octd1", "/bin/echo", "hi")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "hi"
    assert ctr("container", "ls", "-q").stdout.strip() == ""


def test_ctr_detached_killed(host, ctr):
    res = ctr("run", "-d", "--rootfs", str(ROOTFS), "octd2", "/bin/sleep", "1000")
    assert res.returncode == 0, res.stderr
    tasks = ctr("task", "ls").stdout
    assert "octd2" in tasks and "RUNNING" in tasks, tasks
    state = host.run([str(host.dir / "minirun-oci"), "--root",
                      str(host.runroot / "oci" / "default"), "state", "octd2"])
    assert '"status": "running"' in state.stdout, state.stderr
    assert glob.glob("/sys/fs/cgroup/memory/default/octd2")
    res = ctr("task", "kill", "-s", "SIGKILL", "octd2")
    assert res.returncode == 0, res.stderr
    deadline = time.monotonic() + 20
    while "STOPPED" not in ctr("task", "ls").stdout:
        assert time.monotonic() < deadline, ctr("task", "ls").stdout
        time.sleep(0.05)
    assert ctr("task", "rm", "octd2").returncode == 0
    assert ctr("container", "rm", "octd2").returncode == 0
    assert not glob.glob("/sys/fs/cgroup/*/default/octd2")
    assert not list((host.runroot / "oci" / "default").iterdir())
