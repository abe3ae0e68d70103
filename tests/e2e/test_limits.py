"""Resource limits, each proven by its effect: the OOM killer, EAGAIN on fork, a CPU held
to its quota, a cpuset, the cgroup namespace; `minirun stats`; no cgroup is ever left
behind (the host fixture counts this root's cgroups before and after every test)."""
import json
import os
import time
import uuid

from harness import MINIRUN, ROOTFS

R = str(ROOTFS)


def record(host, name) -> dict:
    return host.record(name)


def cgroup_dirs(host, name) -> list[tuple[list, str]]:
    [step] = [s for s in record(host, name)["journal"] if s["kind"] == "cg.create"]
    return step["intent"]["dirs"]


def cgroup_dir(host, name, controller) -> str:
    return next(p for ctrls, p in cgroup_dirs(host, name) if controller in ctrls)


def detach(host, name, *args):
    res = host.minirun("run", "-d", "--name", name, "--network", "none", *args)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def wait_for(cond, what, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_memory_limit_oom_kills(host):
    res = host.minirun("run", "--name", "hog", "--network", "none", "--memory", "32m", R,
                       "sh", "-c", "head -c 100m /dev/zero > /dev/shm/x; echo survived")
    assert res.returncode == 137, (res.stdout, res.stderr)
    assert "survived" not in res.stdout
    rec = record(host, "hog")
    assert rec["oom_killed"] is True and rec["exit_code"] == 137
    assert rec["config"]["resources"]["memory"] == 32 << 20
    assert rec["config"]["resources"]["memory_swap"] == 64 << 20  # Docker's default
    ps = host.minirun("ps", "-a", check=True).stdout
    assert "Exited (137)" in ps and host.inspect("hog")["State"]["OOMKilled"] is True
    # the same work under no limit (the tmpfs holds 64 MB): no OOM
    res = host.minirun("run", "--name", "fine", "--network", "none", "--memory", "128m", R,
                       "sh", "-c", "head -c 40m /dev/zero > /dev/shm/x; echo survived")
    assert res.returncode == 0 and "survived" in res.stdout, res.stderr
    assert record(host, "fine")["oom_killed"] is False
    assert host.inspect("fine")["State"]["OOMKilled"] is False
    host.minirun("rm", "hog", "fine", check=True)


def test_pids_limit_stops_a_fork_loop(host):
    detach(host, "p", "--pids-limit", "20", R, "sleep", "1000")
    # exec'd processes are in the container's cgroup too: the loop hits the limit
    res = host.minirun("exec", "p", "sh", "-c", "for i in $(seq 50); do sleep 1000 >/dev/null 2>&1 & done")
    assert res.returncode != 0 and "can't fork" in res.stdout + res.stderr, res
    pids = json.loads(host.minirun("stats", "--no-stream", "--format", "json", "p",
                                   check=True).stdout)["PIDs"]
    # 20 while the loop's shell and its exec'd parent lived; 1 + 17 sleeps stay
    assert 17 <= int(pids) <= 20, pids
    with open(os.path.join(cgroup_dir(host, "p", "pids"), "pids.max")) as f:
        assert f.read().strip() == "20"
    assert host.run("true").returncode == 0  # the host forks as before
    host.minirun("rm", "-f", "p", check=True)


def _cpu_ns(host, name) -> int:
    dirs = cgroup_dirs(host, name)
    acct = next((p for ctrls, p in dirs if "cpuacct" in ctrls), None)
    if acct:
        with open(os.path.join(acct, "cpuacct.usage")) as f:
            return int(f.read())
    with open(os.path.join(dirs[0][1], "cpu.stat")) as f:  # v2
        return int(f.read().split("usage_usec ")[1].split()[0]) * 1000


def test_cpus_holds_a_busy_loop_to_half_a_cpu(host):
    detach(host, "busy", "--cpus", "0.5", R, "sh", "-c", "while :; do :; done")
    a, t0 = _cpu_ns(host, "busy"), time.monotonic()
    time.sleep(3)  # the measurement window itself, not a wait for a condition
    b, t1 = _cpu_ns(host, "busy"), time.monotonic()
    share = (b - a) / ((t1 - t0) * 1e9)
    assert 0.3 <= share <= 0.7, share
    host.minirun("rm", "-f", "busy", check=True)


def test_cpuset_pins(host):
    res = host.minirun("run", "--rm", "--network", "none", "--cpuset-cpus", "0", R,
                       "grep", "Cpus_allowed_list", "/proc/1/status")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["Cpus_allowed_list:", "0"]


def test_cgroup_namespace_shows_own_root(host):
    res = host.minirun("run", "--rm", "--network", "none", R, "cat", "/proc/self/cgroup")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.split()
    assert lines and all(l.endswith(":/") for l in lines), lines
    detach(host, "ns", R, "sleep", "1000")
    out = host.minirun("exec", "ns", "cat", "/proc/self/cgroup", check=True).stdout.split()
    assert out and all(l.endswith(":/") for l in out), out
    # and seen from the host, PID 1 is in the container's own cgroup
    pid = record(host, "ns")["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        mine = f.read()
    cid = record(host, "ns")["id"]
    assert "/minirun-" in mine and f"/{cid}\n" in mine, mine
    host.minirun("rm", "-f", "ns", check=True)


def test_cgroup_gone_after_rm_and_no_limit_still_has_one(host):
    detach(host, "c", R, "sleep", "1000")
    dirs = [p for _c, p in cgroup_dirs(host, "c")]
    assert dirs and all(os.path.isdir(p) for p in dirs)
    host.minirun("exec", "c", "true", check=True)
    host.minirun("rm", "-f", "c", check=True)
    assert not any(os.path.exists(p) for p in dirs)
    # and the per-root directory went with its last container
    assert not any(os.path.exists(os.path.dirname(p)) for p in dirs)


def test_stray_exec_process_is_killed_before_rmdir(host):
    detach(host, "s", R, "sleep", "1000")
    exe = host.popen(MINIRUN + ["exec", "s", "sleep", "1000"])
    d = cgroup_dir(host, "s", "pids")
    wait_for(lambda: len(open(os.path.join(d, "cgroup.procs")).read().split()) >= 3,
             "the exec'd process in the cgroup")
    host.minirun("rm", "-f", "s", check=True)
    assert exe.wait(timeout=20) != 0
    assert not os.path.exists(d)


def test_sigkill_mid_start_then_prune(host):
    res = host.run(["env", "MINIRUN_KILL_AT=done:cg.create"] + MINIRUN + [
                    "run", "-d", "--name", "k", "--network", "none", "--memory", "64m", R,
                    "sleep", "1000"])
    assert res.returncode != 0
    tag_dirs = host.inventory()["cgroups"]
    assert tag_dirs, "the cgroup was made before the kill"
    assert host.minirun("system", "prune").returncode == 0
    assert host.inventory()["cgroups"] == []


def test_prune_sweeps_orphans_and_leaves_others_alone(host):
    """A cgroup of this root that no record accounts for goes; one tagged by another
    owner under the same directory stays."""
    detach(host, "keep", R, "sleep", "1000")
    d = cgroup_dir(host, "keep", "memory")
    base = os.path.dirname(d)
    orphan = os.path.join(base, uuid.uuid4().hex * 2)
    foreign = os.path.join(base, uuid.uuid4().hex * 2)
    os.mkdir(orphan)
    os.setxattr(orphan, "trusted.minirun", f"{os.path.basename(base)[8:]}:"
                f"{os.path.basename(orphan)}".encode())
    os.mkdir(foreign)
    os.setxattr(foreign, "trusted.minirun", b"someone:else")
    try:
        res = host.minirun("system", "prune")
        assert res.returncode == 0, res.stderr
        assert not os.path.exists(orphan)
        assert os.path.isdir(foreign) and os.path.isdir(d)  # not ours / still running
    finally:
        if os.path.exists(foreign):
            os.rmdir(foreign)
    host.minirun("rm", "-f", "keep", check=True)


def _mib(text: str) -> float:
    num = float(text.rstrip("KMGTiB"))
    unit = text[len(text.rstrip("KMGTiB")):]
    return num * {"B": 1 / 2**20, "KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[unit]


def test_stats(host):
    detach(host, "a", "--memory", "100m", R, "sh", "-c",
           "head -c 50m /dev/zero > /dev/shm/x && touch /tmp/ready; sleep 1000")
    res = host.minirun("run", "-d", "--name", "b", R, "sleep", "1000")  # bridge: a veth
    assert res.returncode == 0, res.stderr
    wait_for(lambda: host.minirun("exec", "a", "test", "-e", "/tmp/ready").returncode == 0,
             "50 MB written")
    out = host.minirun("stats", "--no-stream", check=True).stdout.splitlines()
    assert out[0].split()[:4] == ["CONTAINER", "ID", "NAME", "CPU"]
    rows = {l.split()[1]: l for l in out[1:]}
    assert set(rows) == {"a", "b"}
    lines = host.minirun("stats", "--no-stream", "--format", "json",
                         check=True).stdout.splitlines()
    js = {d["Name"]: d for d in map(json.loads, lines)}
    used, limit = js["a"]["MemUsage"].split(" / ")
    assert _mib(used) >= 50 and limit == "100MiB", js["a"]
    # no limit: the host's memory, as Docker shows it
    with open("/proc/meminfo") as f:
        total = int(f.readline().split()[1]) * 1024
    assert abs(_mib(js["b"]["MemUsage"].split(" / ")[1]) - total / 2**20) < total / 2**20 / 100
    assert js["b"]["NetIO"].count(" / ") == 1 and int(js["a"]["PIDs"]) >= 1
    assert set(js["a"]) >= {"ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO",
                            "BlockIO", "PIDs"}
    host.minirun("rm", "-f", "a", "b", check=True)


def test_bad_limits_refused_nothing_created(host):
    for args, msg in ((["--memory", "5m"], "minimum memory limit allowed is 6MB"),
                      (["--memory", "lots"], "invalid --memory"),
                      (["--memory-swap", "100m"], "needs --memory"),
                      (["--cpus", "99"], "range of CPUs"),
                      (["--cpuset-cpus", "99"], "not available"),
                      (["--pids-limit", "x"], "invalid --pids-limit"),
                      (["--cpu-weight", "0"], "from 1 to 10000")):
        res = host.minirun("run", "--network", "none", *args, R, "true")
        assert res.returncode == 125, (args, res.stderr)
        assert res.stderr.startswith("minirun: ") and msg in res.stderr, res.stderr
        assert res.stderr.count("\n") == 1
