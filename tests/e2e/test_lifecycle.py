"""Detached containers and the lifecycle verbs: ps, top, exec, logs, stop, kill, rm, inspect."""
import os
import re
import time

from harness import ROOTFS

R = str(ROOTFS)


def detach(host, name, *cmd, extra=()):
    res = host.minirun("run", "-d", "--name", name, "--network", "none", *extra, R, *cmd)
    assert res.returncode == 0, res.stderr
    cid = res.stdout.strip()
    assert len(cid) == 64
    return cid


def wait_status(host, name, want, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = host.record(name)["status"]
        if st == want:
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} never became {want}")


def test_detached_lifecycle(host):
    cid = detach(host, "web", "sh", "-c", "echo started; sleep 1000")
    ps = host.minirun("ps", check=True).stdout
    assert "web" in ps and cid[:12] in ps and "Up " in ps
    rec = host.record("web")
    assert rec["id"] == cid and rec["status"] == "running"
    assert host.minirun("logs", "web").stdout == "started\n"
    # exec sees the container's processes, with container PIDs
    out = host.minirun("exec", "web", "ps", "-o", "pid,args", check=True).stdout
    pids = [l.split(None, 1) for l in out.strip().splitlines()[1:]]
    assert pids[0] == ["1", "sleep 1000"]
    assert host.minirun("exec", "web", "sh", "-c", "exit 7").returncode == 7
    assert host.minirun("exec", "web", "nope").returncode == 127
    # stop: PID 1 ignores SIGTERM, so after the grace period it gets SIGKILL
    assert host.minirun("stop", "-t", "1", "web", check=True).stdout.strip() == "web"
    rec = host.record("web")
    assert rec["status"] == "exited" and rec["exit_code"] == 137
    assert "Exited (137)" in host.minirun("ps", "-a", check=True).stdout
    assert "web" not in host.minirun("ps", check=True).stdout
    host.minirun("rm", "web", check=True)
    assert host.minirun("inspect", "web").returncode == 1  # as Docker's


def test_top_shows_host_and_container_pids_side_by_side(host):
    detach(host, "t", "sh", "-c", "sleep 1000 & sleep 1000")
    procs, namespaces = host.minirun("top", "t", check=True).stdout.strip().split("\n\n")
    out = procs.splitlines()
    assert out[0].split()[:3] == ["HOST", "PID", "CONTAINER"]
    rows = [l.split(None, 4) for l in out[1:]]
    assert len(rows) == 2
    assert sorted(int(r[1]) for r in rows) == [1, 2]
    for host_pid, container_pid, *_ in rows:
        assert int(host_pid) != int(container_pid)
        status = open(f"/proc/{host_pid}/status").read()
        nspid = [l for l in status.splitlines() if l.startswith("NSpid")][0].split()
        assert nspid[1] == host_pid and nspid[-1] == container_pid
    # the namespace identities beside the host's (PID 1's), shared ones marked
    out = namespaces.splitlines()
    header = re.split(r"\s{2,}", out[0])
    assert header[:2] == ["NAMESPACE", "CONTAINER (PID 1)"] and header[3] == "SHARED"
    # the host's: PID 1's, or minirun's own where PID 1's is out of reach (a sandbox)
    assert header[2] == "HOST (PID 1)" or header[2].startswith("HOST (minirun, PID ")
    table = {l.split()[0]: l.split()[1:] for l in out[1:]}
    assert sorted(table) == ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"]
    pid1 = rows[[int(r[1]) for r in rows].index(1)][0]
    for ns, (inside, outside, shared) in table.items():
        assert inside == os.readlink(f"/proc/{pid1}/ns/{ns}")
        if header[2] == "HOST (PID 1)":
            assert outside == os.readlink(f"/proc/1/ns/{ns}")
        assert shared == ("yes" if inside == outside else "no")
    for ns in ("ipc", "mnt", "net", "pid", "uts"):
        assert table[ns][2] == "no", ns
    host.minirun("rm", "-f", "t", check=True)


def test_container_exit_is_recorded_and_rm_after(host):
    detach(host, "short", "sh", "-c", "exit 4")
    wait_status(host, "short", "exited")
    assert host.record("short")["exit_code"] == 4
    host.minirun("rm", "short", check=True)


def test_detached_rm_removes_itself(host):
    detach(host, "gone", "true", extra=("--rm",))
    deadline = time.monotonic() + 10
    while host.minirun("inspect", "gone").returncode == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_sigkill_of_pid1_stops_the_container_at_once(host):
    detach(host, "victim", "sleep", "1000")
    pid = host.record("victim")["pid"]
    os.kill(pid, 9)
    wait_status(host, "victim", "exited")
    assert host.record("victim")["exit_code"] == 137
    host.minirun("rm", "victim", check=True)


def test_kill_with_signal_and_rm_running_needs_force(host):
    detach(host, "k", "sh", "-c", "trap 'exit 12' USR1; while true; do sleep 0.1; done")
    res = host.minirun("rm", "k")
    assert res.returncode == 125 and "running" in res.stderr
    host.minirun("kill", "-s", "USR1", "k", check=True)
    wait_status(host, "k", "exited")
    assert host.record("k")["exit_code"] == 12
    host.minirun("rm", "k", check=True)


def test_names_are_unique_and_ids_resolve(host):
    cid = detach(host, "dup", "sleep", "1000")
    res = host.minirun("run", "-d", "--name", "dup", "--network", "none", R, "true")
    assert res.returncode == 125 and "already in use" in res.stderr
    assert host.minirun("exec", cid[:8], "true").returncode == 0
    host.minirun("rm", "-f", cid[:12], check=True)


def test_detached_exec_failure_reports_and_leaves_nothing(host):
    res = host.minirun("run", "-d", "--name", "bad", "--network", "none", R, "nope")
    assert res.returncode == 127 and res.stdout == ""
    assert host.minirun("inspect", "bad").returncode == 1


def test_stopped_container_exec_is_refused(host):
    detach(host, "x", "true")
    wait_status(host, "x", "exited")
    res = host.minirun("exec", "x", "true")
    assert res.returncode == 125 and "not running" in res.stderr
    host.minirun("rm", "x", check=True)


def test_monitor_is_small(host):
    detach(host, "m", "sleep", "1000")
    out = host.sh("ps -e -o rss= -o args= | grep '^ *[0-9]* minirun-monitor'")
    rss_kb = int(out.split()[0])
    assert rss_kb < 4096, f"monitor uses {rss_kb} kB"
    host.minirun("rm", "-f", "m", check=True)


def test_logs_follow_until_exit(host):
    detach(host, "lf", "sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done")
    res = host.minirun("logs", "-f", "lf", timeout=20)
    assert res.stdout.split() == ["line1", "line2", "line3"]
    wait_status(host, "lf", "exited")
    host.minirun("rm", "lf", check=True)


def test_exec_with_tty_env_workdir_user(host):
    detach(host, "e", "sleep", "1000")
    res = host.minirun("exec", "-t", "e", "tty")
    assert res.returncode == 0 and res.stdout.strip().startswith("/dev/pts/")
    res = host.minirun("exec", "-e", "X=1", "-w", "/tmp", "-u", "65534", "e", "sh", "-c",
                       'echo "$X $PWD $(id -u)"')
    assert res.stdout.strip() == "1 /tmp 65534"
    assert host.minirun("exec", "-i", "e", "cat", input="through").stdout == "through"
    host.minirun("rm", "-f", "e", check=True)


def test_ps_quiet_and_all(host):
    cid = detach(host, "q", "sleep", "1000")
    assert host.minirun("ps", "-q", check=True).stdout.split() == [cid[:12]]
    host.minirun("rm", "-f", "q", check=True)
    assert host.minirun("ps", "-a", "-q", check=True).stdout.split() == []
