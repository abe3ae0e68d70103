"""minirun-oci driven directly, as an engine would, against the real kernel in throwaway
hosts: the create/start/state/kill/delete cycle, hooks, exec, pause/resume, the
console socket, and what config.json asks of the container (masks, read-only paths,
capabilities, seccomp, sysctl, devices and the device cgroup, rlimits, user).

The bundle's root is the test rootfs, read-only; a host directory is bound on /tmp
for what the container writes.
"""
import array
import json
import os
import socket
import sys
import time

import pytest

from harness import ROOTFS

from minirun.oci.config import default_spec


class Oci:
    def __init__(self, host):
        self.host = host
        self.root = host.runroot / "oci"
        self.bundle = host.dir / "bundle"
        self.bundle.mkdir()
        self.out = host.dir / "out"
        self.out.mkdir()

    def config(self, args, change=None, terminal=False):
        doc = default_spec(str(ROOTFS), args, terminal)
        doc["mounts"].append({"destination": "/tmp", "type": "bind",
                              "source": str(self.out), "options": ["rbind", "rw"]})
        doc["linux"]["cgroupsPath"] = f"/{self.host.cgroup_tag}/oci"
        if change:
            change(doc)
        (self.bundle / "config.json").write_text(json.dumps(doc))

    def __call__(self, *args, timeout=60, input=None):
        return self.host.run([sys.executable, "-m", "minirun.oci", "--root", str(self.root),
                              *args], timeout=timeout, input=input)

    def detached(self, *args):
        """create, run -d, exec -d: the container keeps the stdio it was given, so it
        gets files, not the pipes a captured run would wait on."""
        log = self.host.dir / "runtime.log"
        res = self.host.run(f"exec {sys.executable} -m minirun.oci --root {self.root} "
                            + " ".join(args) + f" </dev/null >{log} 2>&1")
        assert res.returncode == 0, f"{args}: {log.read_text()}"

    def ok(self, *args):
        res = self(*args)
        assert res.returncode == 0, f"{args}: {res.stderr}"
        return res.stdout

    def status(self, cid):
        return json.loads(self.ok("state", cid))["status"]

    def run(self, args, change=None):
        self.config(args, change)
        return self("run", "--bundle", str(self.bundle), "c1")


@pytest.fixture
def oci(host):
    o = Oci(host)
    yield o
    for cid in o("list", "-q").stdout.split():
        o("delete", "--force", cid)


def wait_until(pred, timeout=10):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_run_prints_and_exits_with_the_code(oci):
    res = oci.run(["sh", "-c", "echo hello from $(hostname); exit 5"])
    assert res.returncode == 5, res.stderr
    assert res.stdout == "hello from minirun\n"
    assert oci("list", "-q").stdout == ""
    res = oci.run(["/no/such/program"])
    assert res.returncode == 127 and "minirun-oci: exec '/no/such/program'" in res.stderr
    res = oci.run(["/etc"])
    assert res.returncode == 126 and "is a directory" in res.stderr
    assert oci("list", "-q").stdout == ""


def test_create_start_state_kill_delete(oci):
    oci.config(["sh", "-c", "echo started > /tmp/marker; exec sleep 1000"])
    pidfile = oci.host.dir / "pid"
    oci.detached("create", "--bundle", str(oci.bundle), "--pid-file", str(pidfile), "c1")
    state = json.loads(oci.ok("state", "c1"))
    assert state["status"] == "created" and state["id"] == "c1"
    assert state["pid"] == int(pidfile.read_text()) and state["bundle"] == str(oci.bundle)
    assert state["ociVersion"].startswith("1.")
    assert not (oci.out / "marker").exists()  # blocked before the user's program
    cg = [f"/sys/fs/cgroup/{c}/{oci.host.cgroup_tag}/oci" for c in ("memory", "pids")]
    assert all(os.path.isdir(p) for p in cg)
    assert state["pid"] in map(int, open(cg[0] + "/cgroup.procs").read().split())

    oci.ok("delete", "c1")  # a created container may be deleted; a running one not
    oci.detached("create", "--bundle", str(oci.bundle), "c2")
    oci.ok("start", "c2")
    wait_until(lambda: (oci.out / "marker").exists())
    assert oci.status("c2") == "running"
    assert oci("start", "c2").returncode != 0
    res = oci("delete", "c2")
    assert res.returncode == 125 and "running" in res.stderr
    assert json.loads(oci.ok("ps", "--format", "json", "c2"))
    oci.ok("kill", "c2", "KILL")
    wait_until(lambda: oci.status("c2") == "stopped")
    res = oci("kill", "c2", "TERM")
    assert res.returncode != 0 and "container not running" in res.stderr
    oci.ok("delete", "c2")
    assert oci("state", "c2").returncode != 0
    assert "does not exist" in oci("state", "c2").stderr
    assert oci("delete", "--force", "c2").returncode == 0
    assert not any(os.path.exists(p) for p in cg)
    assert oci("list", "-q").stdout == ""


def test_hooks_get_the_state_in_order(oci):
    log = oci.out / "hooks"

    def hook(name, inside=False):
        path = "/tmp/hooks" if inside else str(log)
        return {"path": "/bin/sh", "args": ["sh", "-c", f"read s; echo {name} \"$s\" >> "
                                                         f"{path}"]}

    def change(doc):
        doc["hooks"] = {n: [hook(n, n == "startContainer")]
                        for n in ("prestart", "createRuntime", "createContainer",
                                  "startContainer", "poststart", "poststop")}
        doc["annotations"] = {"who": "test"}
    oci.config(["sh", "-c", "echo program >> /tmp/hooks; exec sleep 1000"], change)
    oci.detached("create", "--bundle", str(oci.bundle), "c1")
    oci.ok("start", "c1")
    wait_until(lambda: "program" in log.read_text())
    oci.ok("kill", "c1", "9")
    wait_until(lambda: oci.status("c1") == "stopped")
    oci.ok("delete", "c1")
    lines = log.read_text().splitlines()
    names = [line.split()[0] for line in lines]
    assert names[:3] == ["prestart", "createRuntime", "createContainer"]
    # start: startContainer inside before the program; poststart outside, any time after
    assert names.index("startContainer") < names.index("program")
    assert sorted(names[3:6]) == ["poststart", "program", "startContainer"]
    assert names[-1] == "poststop" and len(names) == 7
    states = {line.split()[0]: json.loads(line.split(" ", 1)[1]) for line in lines
              if line.split()[0] != "program"}
    # the environment exists once create's step 2 is done (runtime.md, Lifecycle)
    assert states["prestart"]["status"] == "created"
    assert states["createRuntime"]["status"] == "created"
    assert states["poststart"]["status"] == "running"
    assert states["poststop"]["status"] == "stopped"
    assert all(s["id"] == "c1" and s["annotations"] == {"who": "test"}
               for s in states.values())
    assert states["createRuntime"]["pid"] > 0
    assert states["createContainer"]["pid"] == states["createRuntime"]["pid"]
    assert states["createContainer"]["status"] == "created"


def test_poststart_runs_once_the_program_does(oci):
    """runtime.md: poststart after the user's program is started: `start` waits for the
    init's exec, so the hook finds the program's command line at the state's pid."""
    seen = oci.out / "seen"
    hook = ("read s; pid=$(echo \"$s\" | grep -o '\"pid\": [0-9]*' | grep -o '[0-9]*$'); "
            f"tr '\\0' ' ' < /proc/$pid/cmdline > {seen}")

    def change(doc):
        doc["hooks"] = {"poststart": [{"path": "/bin/sh", "args": ["sh", "-c", hook]}],
                        "startContainer": [{"path": "/bin/sleep", "args": ["sleep", "0.2"]}]}
    oci.config(["sleep", "1000"], change)
    oci.detached("create", "--bundle", str(oci.bundle), "c1")
    oci.ok("start", "c1")
    assert seen.read_text() == "sleep 1000 "
    assert not os.path.exists(oci.root / "c1" / "execd.fifo")
    oci.ok("delete", "--force", "c1")


@pytest.mark.parametrize("name", ["poststart", "poststop"])
def test_failing_poststart_poststop_hook_warns_and_the_rest_runs(oci, name):
    """runtime.md: a failing poststart/poststop hook is a warning; the remaining hooks
    and the lifecycle go on."""
    mark = oci.out / "after"

    def change(doc):
        doc["hooks"] = {name: [{"path": "/bin/false", "args": ["false"]},
                               {"path": "/bin/sh", "args": ["sh", "-c", f"echo ran > {mark}"]}]}
    oci.config(["true"], change)
    oci.detached("create", "--bundle", str(oci.bundle), "c1")
    res = oci("start", "c1")
    assert res.returncode == 0, res.stderr
    wait_until(lambda: oci.status("c1") == "stopped")
    res2 = oci("delete", "c1")
    assert res2.returncode == 0, res2.stderr
    said = res.stderr if name == "poststart" else res2.stderr
    assert said == f"minirun-oci: warning: {name} hook /bin/false exited with 1\n"
    assert mark.read_text() == "ran\n"
    assert oci("list", "-q").stdout == ""


def test_failing_hook_fails_create_and_leaves_nothing(oci):
    def change(doc):
        doc["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    oci.config(["true"], change)
    res = oci("create", "--bundle", str(oci.bundle), "c1")
    assert res.returncode == 125 and "createRuntime hook /bin/false exited with 1" in \
        res.stderr
    assert oci("list", "-q").stdout == ""
    assert not os.path.exists(f"/sys/fs/cgroup/memory/{oci.host.cgroup_tag}/oci")


@pytest.mark.parametrize("name", ["createRuntime", "createContainer"])
def test_hook_timeout_fails_create(oci, name):
    def change(doc):
        doc["hooks"] = {name: [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]}
    oci.config(["true"], change)
    res = oci("create", "--bundle", str(oci.bundle), "c1")
    assert res.returncode == 125 and f"{name} hook /bin/sleep timed out after 1s" in \
        res.stderr, res.stderr
    assert oci("list", "-q").stdout == ""


def test_exec_and_pause_resume(oci):
    oci.config(["sleep", "1000"])
    oci.detached("run", "-d", "--bundle", str(oci.bundle), "c1")
    proc = oci.host.dir / "process.json"
    proc.write_text(json.dumps({"args": ["sh", "-c", "echo $X; id -u; exit 4"],
                                "env": ["PATH=/bin:/usr/bin", "X=exec-env"], "cwd": "/",
                                "user": {"uid": 1000, "gid": 1000}}))
    res = oci("exec", "--process", str(proc), "c1")
    assert res.returncode == 4 and res.stdout == "exec-env\n1000\n", res.stderr
    pidfile = oci.host.dir / "exec.pid"
    proc.write_text(json.dumps({"args": ["sleep", "999"], "cwd": "/"}))
    oci.detached("exec", "--detach", "--pid-file", str(pidfile), "--process", str(proc), "c1")
    pid = int(pidfile.read_text())
    assert pid in json.loads(oci.ok("ps", "--format", "json", "c1"))
    oci.ok("pause", "c1")
    assert oci.status("c1") == "paused"
    assert oci("pause", "c1").returncode != 0
    oci.ok("resume", "c1")
    assert oci.status("c1") == "running"
    oci.ok("kill", "--all", "c1", "KILL")
    wait_until(lambda: oci.status("c1") == "stopped")
    oci.ok("delete", "c1")


def test_console_socket_gets_the_pty_master(oci):
    sockpath = str(oci.host.dir / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sockpath)
    srv.listen(1)
    oci.config(["sh", "-c", "tty; echo on-the-pty"], terminal=False)
    doc = json.loads((oci.bundle / "config.json").read_text())
    doc["process"]["terminal"] = True
    (oci.bundle / "config.json").write_text(json.dumps(doc))
    res = oci("create", "--bundle", str(oci.bundle), "c1")
    assert res.returncode == 125 and "--console-socket" in res.stderr
    p = oci.host.popen([sys.executable, "-m", "minirun.oci", "--root", str(oci.root),
                        "create", "--bundle", str(oci.bundle), "--console-socket", sockpath,
                        "c1"])
    conn, _ = srv.accept()
    fds = array.array("i")
    _msg, anc, _f, _a = conn.recvmsg(64, socket.CMSG_LEN(fds.itemsize))
    fds.frombytes(anc[0][2][:fds.itemsize])
    master = fds[0]
    assert p.wait(timeout=30) == 0
    oci.ok("start", "c1")
    out = b""
    while b"on-the-pty" not in out:
        try:
            chunk = os.read(master, 1024)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    conn.close()
    srv.close()
    assert b"/dev/pts/0" in out and b"on-the-pty" in out
    wait_until(lambda: oci.status("c1") == "stopped")
    oci.ok("delete", "c1")


def test_what_config_json_asks_of_the_container(oci):
    script = "; ".join([
        "touch /rootfs-write 2>/dev/null && echo root-rw || echo root-ro",
        "echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo sys-rw || echo sys-ro",
        "wc -c < /etc/hosts; ls /sys/firmware | wc -l",
        "grep CapEff /proc/self/status",
        "grep NoNewPrivs /proc/self/status",
        "mkdir /tmp/d 2>&1 | grep -o 'not permitted' || echo mkdir-ok",
        "cat /proc/sys/net/ipv4/ip_forward",
        "ulimit -n",
        "cat /proc/self/oom_score_adj",
        "id",
        "echo x > /dev/null && echo null-ok",
    ])

    def change(doc):
        p = doc["process"]
        p["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 6]}
        # a user other than root keeps capabilities across exec only as ambient ones
        p["capabilities"] = {s: ["CAP_KILL", "CAP_CHOWN"] for s in
                             ("bounding", "permitted", "effective", "inheritable", "ambient")}
        p["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 512}]
        p["oomScoreAdj"] = 300
        doc["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
        doc["linux"]["maskedPaths"] += ["/etc/hosts"]
        doc["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
        doc["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    res = oci.run(["sh", "-c", script], change)
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert out[:4] == ["root-ro", "sys-ro", "0", "0"]
    assert out[4].split() == ["CapEff:", "0000000000000021"]   # CHOWN, KILL
    assert out[5].split() == ["NoNewPrivs:", "1"]
    assert out[6] == "not permitted"
    assert out[7:10] == ["1", "512", "300"]
    assert out[10].startswith("uid=1000 gid=1000 groups=") and "5" in out[10] \
        and "6" in out[10], out[10]
    assert out[11] == "null-ok"


def test_resources_beyond_dockers_flags(oci):
    """linux.resources that `minirun run` has no flag for, in the v1 cgroup files."""
    def change(doc):
        doc["linux"]["resources"] = {
            "memory": {"limit": 50593792, "reservation": 40 << 20, "swap": 50593792,
                       "kernelTCP": 50593792, "swappiness": 10, "disableOOMKiller": True},
            "cpu": {"shares": 2048, "quota": 50000, "period": 500000, "cpus": "0",
                    "mems": "0"}}
    oci.config(["sleep", "1000"], change)
    oci.detached("create", "--bundle", str(oci.bundle), "c1")
    base = "/sys/fs/cgroup/{}/" + oci.host.cgroup_tag + "/oci/{}"

    def read(ctrl, name):
        with open(base.format(ctrl, name)) as f:
            return f.read().strip()
    assert read("memory", "memory.limit_in_bytes") == "50593792"
    assert read("memory", "memory.soft_limit_in_bytes") == str(40 << 20)
    assert read("memory", "memory.kmem.tcp.limit_in_bytes") == "50593792"
    assert read("memory", "memory.swappiness") == "10"
    assert "oom_kill_disable 1" in read("memory", "memory.oom_control")
    assert read("cpu", "cpu.cfs_period_us") == "500000"
    assert read("cpu", "cpu.cfs_quota_us") == "50000"
    assert read("cpu", "cpu.shares") == "2048"
    assert (read("cpuset", "cpuset.cpus"), read("cpuset", "cpuset.mems")) == ("0", "0")
    oci.ok("delete", "c1")
    assert not os.path.exists(base.format("memory", ""))


def test_masked_and_readonly_nodes_binds_with_fs_options_propagation(oci):
    """A masked device node or fifo gets /dev/null bound over it, a read-only one is
    bound read-only onto itself; a bind ignores tmpfs options such as mode=755 (as the
    kernel does); rootfsPropagation is that of the container's /."""
    script = "; ".join([
        "stat -c '%F %t,%T' /dev/masked-fifo /dev/masked-zero",
        "echo x > /dev/ro-zero 2>/dev/null; grep ' /dev/ro-zero ' /proc/self/mountinfo"
        " | grep -c ' ro,'",
        "ls /mnt/etc/hostname",
        "awk '$5 == \"/\" {print $7}' /proc/self/mountinfo | cut -d: -f1",
    ])

    def change(doc):
        doc["linux"]["devices"] = [
            {"path": "/dev/masked-fifo", "type": "p"},
            {"path": "/dev/masked-zero", "type": "c", "major": 1, "minor": 5},
            {"path": "/dev/ro-zero", "type": "c", "major": 1, "minor": 5}]
        doc["linux"]["maskedPaths"] += ["/dev/masked-fifo", "/dev/masked-zero"]
        doc["linux"]["readonlyPaths"] += ["/dev/ro-zero"]
        doc["mounts"].append({"destination": "/mnt/etc", "source": "/etc",
                              "options": ["rbind", "nosuid", "mode=755", "size=1k"]})
        doc["linux"]["rootfsPropagation"] = "shared"
    res = oci.run(["sh", "-c", script], change)
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert out[:2] == ["character special file 1,3"] * 2, out
    assert out[2:5] == ["1", "/mnt/etc/hostname", "shared"], out
    # a bare word that is no mount flag is still refused on a bind
    oci.config(["true"], lambda d: d["mounts"].append(
        {"destination": "/mnt", "source": "/etc", "options": ["rbind", "bogus"]}))
    res = oci("create", "--bundle", str(oci.bundle), "c2")
    assert res.returncode == 125 and "'bogus' is not a flag of a bind mount" in res.stderr


def test_newer_capabilities_left_out_and_unknown_properties_ignored(oci):
    """A capability this kernel (or python-prctl) does not know is left out with a
    warning, as runc does; a name that is no capability is refused; a property the spec
    does not define is ignored (config.md, Extensibility)."""
    from minirun import caps
    from minirun.oci.config import _cap_last_cap
    unknown_here = "CHECKPOINT_RESTORE" not in caps.all_names() or _cap_last_cap() < 40

    def change(doc):
        doc["process"]["capabilities"]["bounding"] += ["CAP_CHECKPOINT_RESTORE"]
        doc["unknown"] = {"anything": 1}
        doc["linux"]["resources"] = {"pids": {"limit": 50, "future": True}}
    res = oci.run(["sh", "-c", "grep CapBnd /proc/self/status"], change)
    assert res.returncode == 0, res.stderr
    bnd = int(res.stdout.split()[1], 16)
    assert bool(bnd & (1 << 40)) != unknown_here
    said = "minirun-oci: warning: config.json: process.capabilities: " \
        "CAP_CHECKPOINT_RESTORE unknown to this kernel (or to python-prctl), left out\n"
    assert res.stderr == (said if unknown_here else "")
    oci.config(["true"], lambda d: d["process"]["capabilities"]["bounding"].append(
        "CAP_TEST"))
    res = oci("create", "--bundle", str(oci.bundle), "c2")
    assert res.returncode == 125 and "unknown capability 'CAP_TEST'" in res.stderr


def test_devices_and_the_device_cgroup(oci):
    def change(doc):
        doc["process"]["capabilities"] = {s: ["CAP_MKNOD", "CAP_SYS_RAWIO", "CAP_DAC_OVERRIDE"]
                                          for s in ("bounding", "permitted", "effective")}
        doc["linux"]["devices"] = [{"path": "/dev/sub/mine", "type": "c", "major": 1,
                                    "minor": 1, "fileMode": 0o640, "uid": 7, "gid": 8}]
        doc["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    res = oci.run(["sh", "-c", "ls -ln /dev/sub/mine; mknod /tmp/other c 1 2 2>&1; "
                   "mknod /tmp/null c 1 3 && echo null-made"], change)
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert out[0].split()[:5] == ["crw-r-----", "1", "7", "8", "1,"], out
    assert "Operation not permitted" in out[1]
    assert out[2] == "null-made"


def test_bad_config_is_one_line_and_nothing_is_made(oci):
    oci.config(["true"], lambda d: d["linux"].update(intelRdt={"closID": "x"}))
    res = oci("create", "--bundle", str(oci.bundle), "c1")
    assert res.returncode == 125
    assert res.stderr == "minirun-oci: config.json: linux.intelRdt is not supported by " \
        "minirun\n"
    assert oci("list", "-q").stdout == ""
    res = oci("state", "nope")
    assert res.returncode != 0 and res.stderr.count("\n") == 1


def test_minirun_run_writes_its_config_json(host):
    """`minirun run` leaves its container described in the OCI format minirun-oci reads."""
    from minirun.oci.config import parse
    cid = host.minirun("run", "-d", "--name", "desc", "--network", "none", "--memory", "64m",
                       "--read-only", str(ROOTFS), "sleep", "100", check=True).stdout.strip()
    cdir = host.root / "containers" / cid
    doc = json.loads((cdir / "config.json").read_text())
    spec = parse(doc, str(cdir))
    assert spec.process.args == ("sleep", "100") and spec.readonly
    assert spec.resources.memory == 64 << 20
    assert "/proc/sys" in spec.readonly_paths and "/proc/keys" in spec.masked
    assert {m.destination for m in spec.mounts} >= {"/proc", "/dev", "/etc/hosts"}
    assert "network" in spec.new_namespaces()
    assert doc["annotations"]["io.github.minirun.name"] == "desc"
    host.minirun("rm", "-f", "desc", check=True)


def test_minirun_run_is_a_front_end_over_the_oci_runtime(host):
    """One path: a `minirun run` container is an OCI container of minirun-oci's create and
    start, with its state in CONTAINER_DIR/oci: minirun-oci's state, ps and kill answer
    for it, and `inspect --config` shows the config.json its init was started from."""
    cid = host.minirun("run", "-d", "--name", "one", "--memory", "64m", str(ROOTFS),
                       "sleep", "100", check=True).stdout.strip()
    cdir = host.root / "containers" / cid
    shown = json.loads(host.minirun("inspect", "--config", "one", check=True).stdout)
    assert shown == [json.loads((cdir / "config.json").read_text())]
    assert shown[0]["process"]["args"] == ["sleep", "100"]
    # the overlay the init mounted as its root: the annotation, not a guess
    assert shown[0]["annotations"]["io.github.minirun.overlay"].startswith(
        f"lowerdir={ROOTFS},upperdir={cdir}/upper,")

    def oci(*args):
        return host.run([sys.executable, "-m", "minirun.oci", "--root", str(cdir / "oci"),
                         *args])
    state = json.loads(oci("state", cid).stdout)
    pid = int(host.minirun("inspect", "-f", "{{.State.Pid}}", "one", check=True).stdout)
    assert (state["status"], state["pid"], state["bundle"]) == ("running", pid, str(cdir))
    # its cgroup is the one minirun's journal made: minirun-oci ps lists from it
    ps = oci("ps", "--format", "json", cid)
    assert ps.returncode == 0 and json.loads(ps.stdout) == [pid]
    res = oci("kill", cid, "KILL")
    assert res.returncode == 0, res.stderr
    assert host.minirun("wait", "one", check=True).stdout.strip() == "137"
    assert json.loads(oci("state", cid).stdout)["status"] == "stopped"
    host.minirun("rm", "one", check=True)
    assert not cdir.exists()
    res = host.minirun("inspect", "--config", "one")
    assert res.returncode == 1 and res.stderr == "minirun: no such container: one\n"
