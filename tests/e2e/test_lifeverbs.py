"""wait, rename, pause/unpause, exec -d, cp: the lifecycle verbs a Docker user expects."""
import os
import sys

from harness import MINIRUN, ROOTFS

R = str(ROOTFS)


def detach(host, name, *cmd, extra=()):
    res = host.minirun("run", "-d", "--name", name, "--network", "none", *extra, R, *cmd)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def status(host, name):
    return host.record(name)["status"]


def test_wait_blocks_until_exit_and_prints_code(host, tmp_path):
    # the container exits when the test removes a file it waits for: no timing involved
    gate = "/tmp/gate"
    detach(host, "w", "sh", "-c", f"touch {gate}; while [ -e {gate} ]; do sleep 0.05; done; "
           "exit 3")
    waiter = host.popen(["python3", "-m", "minirun", "wait", "w"],
                        stdout=__import__("subprocess").PIPE, text=True)
    host.minirun("exec", "w", "rm", "-f", gate, check=True)
    out, _ = waiter.communicate(timeout=30)
    assert waiter.returncode == 0 and out == "3\n"
    # an exited container answers at once with its recorded code, several in one call
    detach(host, "z", "true")
    assert host.minirun("wait", "z", "w", check=True).stdout == "0\n3\n"
    res = host.minirun("wait", "nope", "w")
    assert res.returncode == 125 and res.stdout == "3\n"
    assert "no such container: nope" in res.stderr
    host.minirun("rm", "w", "z", check=True)


def test_rename_keeps_the_container_and_frees_the_old_name(host):
    cid = detach(host, "old", "sleep", "1000")
    detach(host, "taken", "sleep", "1000")
    res = host.minirun("rename", "old", "taken")
    assert res.returncode == 125 and "already in use" in res.stderr
    assert host.minirun("rename", "old", "bad/name").returncode == 125
    assert host.minirun("rename", "old", "new", check=True).stdout == ""
    rec = host.record("new")
    assert rec["id"] == cid and rec["name"] == "new" and rec["status"] == "running"
    assert host.minirun("inspect", "old").returncode == 1
    assert "new" in host.minirun("ps", check=True).stdout.split()
    assert host.minirun("exec", "new", "true").returncode == 0
    # its network namespace follows (ip netns), and the old name is free again
    assert host.sh("ls /run/netns").split() == ["new", "taken"]
    detach(host, "old", "true")
    # a network namespace of that name that is not minirun's: the rename is refused
    host.sh("ip netns add foreign")
    res = host.minirun("rename", "new", "foreign")
    assert res.returncode == 125 and "foreign" in res.stderr
    assert host.record("new")["name"] == "new"
    host.sh("ip netns delete foreign")
    host.minirun("rm", "-f", "new", "old", "taken", check=True)


def test_pause_freezes_and_stop_of_a_paused_container_works(host):
    detach(host, "p", "sh", "-c", "while true; do echo x >> /tmp/ticks; sleep 0.01; done")
    host.minirun("pause", "p", check=True)
    assert status(host, "p") == "paused"
    ps = host.minirun("ps", check=True).stdout
    assert "(Paused)" in ps
    rec = host.record("p")
    cg = [l for l in open(f"/proc/{rec['pid']}/cgroup").read().splitlines() if ":freezer:" in l]
    freezer = "/sys/fs/cgroup/freezer" + cg[0].split(":", 2)[2]
    assert open(f"{freezer}/freezer.state").read().strip() == "FROZEN"
    # no exec into a frozen container; a second pause is refused
    assert host.minirun("exec", "p", "true").returncode == 125
    assert host.minirun("pause", "p").returncode == 125
    host.minirun("unpause", "p", check=True)
    assert status(host, "p") == "running"
    assert open(f"{freezer}/freezer.state").read().strip() == "THAWED"
    assert host.minirun("unpause", "p").returncode == 125
    assert host.minirun("exec", "p", "true").returncode == 0
    # stop, kill and rm -f of a paused container thaw it first
    host.minirun("pause", "p", check=True)
    host.minirun("stop", "-t", "0", "p", check=True)
    assert status(host, "p") == "exited"
    detach(host, "k", "sleep", "1000")
    host.minirun("pause", "k", check=True)
    host.minirun("kill", "k", check=True)
    assert host.minirun("wait", "k", check=True).stdout == "137\n"
    detach(host, "f", "sleep", "1000")
    host.minirun("pause", "f", check=True)
    host.minirun("rm", "-f", "f", "k", "p", check=True)


def test_exec_detached_runs_on_after_the_cli_returns(host):
    detach(host, "e", "sleep", "1000")
    res = host.minirun("exec", "-d", "e", "sh", "-c", "echo $$ > /tmp/pid; exec sleep 999")
    assert res.returncode == 0 and res.stdout == ""
    out = host.minirun("exec", "e", "sh", "-c",
                       "while [ ! -s /tmp/pid ]; do sleep 0.01; done; ps -o pid,args",
                       check=True).stdout
    assert "sleep 999" in out
    assert host.minirun("exec", "-d", "e", "nope").returncode == 127
    assert host.minirun("exec", "-d", "-t", "e", "true").returncode == 125
    host.minirun("rm", "-f", "e", check=True)


def test_cp_both_directions_with_docker_rules(host):
    d = host.dir / "cp"
    (d / "src" / "sub").mkdir(parents=True)
    (d / "src" / "a.txt").write_text("A")
    (d / "src" / "sub" / "b.txt").write_text("B")
    (d / "one.txt").write_text("one")
    detach(host, "c", "sleep", "1000")

    def inside(script):
        return host.minirun("exec", "c", "sh", "-c", script, check=True).stdout

    cp = lambda *a: host.minirun("cp", *a)  # noqa: E731
    # host -> container
    assert cp(str(d / "one.txt"), "c:/tmp/").returncode == 0          # into a directory
    assert cp(str(d / "one.txt"), "c:/tmp/renamed").returncode == 0   # a new file
    assert cp(str(d / "src"), "c:/tmp/new").returncode == 0           # becomes the dir
    assert cp(str(d / "src"), "c:/tmp/new").returncode == 0           # now: into it
    assert cp(str(d / "src") + "/.", "c:/tmp/flat").returncode == 0   # missing: made
    inside("mkdir /tmp/merge")
    assert cp(str(d / "src") + "/.", "c:/tmp/merge").returncode == 0  # the contents
    assert inside("cat /tmp/one.txt /tmp/renamed /tmp/new/a.txt /tmp/new/sub/b.txt "
                  "/tmp/new/src/a.txt /tmp/flat/a.txt /tmp/merge/sub/b.txt") == "oneoneABAAB"
    assert inside("ls /tmp/merge") == "a.txt\nsub\n"
    # ownership: the destination's (root) unless -a
    inside("mkdir -p /o && echo x > /o/f && chown 1234:5678 /o/f && ln -s f /o/l")
    assert cp("c:/o", str(d / "plain")).returncode == 0
    assert os.stat(d / "plain" / "f").st_uid == 0
    assert os.readlink(d / "plain" / "l") == "f"  # a link stays a link
    assert cp("-a", "c:/o", str(d / "kept")).returncode == 0
    st = os.stat(d / "kept" / "f")
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    # container -> host: a symlink SRC is copied as a link, unless -L
    assert cp("c:/o/l", str(d / "link")).returncode == 0
    assert os.readlink(d / "link") == "f"
    assert cp("-L", "c:/o/l", str(d / "followed")).returncode == 0
    assert (d / "followed").read_text() == "x\n"
    # errors: one line, exit 125, nothing made
    for args, why in ((("c:/nope", str(d / "x")), "no such file"),
                      ((str(d / "src"), "c:/tmp/one.txt"), "directory to a file"),
                      ((str(d / "one.txt"), "c:/tmp/missing/"), "must exist"),
                      ((str(d / "one.txt"), "c:/no/such/dir"), "no such directory"),
                      ((str(d / "one.txt"), str(d / "two.txt")), "exactly one"),
                      (("c:/o/f/", str(d / "x")), "not a directory")):
        res = cp(*args)
        assert res.returncode == 125 and why in res.stderr, (args, res.stderr)
        assert len(res.stderr.splitlines()) == 1
    assert not (d / "x").exists()
    # `-` is a tar stream
    res = host.run(f"{' '.join(__import__('harness').MINIRUN)} cp c:/o - | tar -t | sort")
    assert res.stdout.split() == ["o/", "o/f", "o/l"]
    res = host.run(f"tar -C {d} -c one.txt | {' '.join(__import__('harness').MINIRUN)} "
                   "cp - c:/tmp/merge")
    assert res.returncode == 0, res.stderr
    assert inside("cat /tmp/merge/one.txt") == "one"
    host.minirun("rm", "-f", "c", check=True)


def test_cp_cannot_be_led_out_of_the_container_by_a_symlink(host):
    outside = host.dir / "outside"
    outside.mkdir()
    (host.dir / "f").write_text("payload")
    detach(host, "s", "sleep", "1000")
    # symlinks in the container to / and to a real host directory, to a file beside
    host.minirun("exec", "s", "sh", "-c", f"ln -s / /up && ln -s {outside} /host && "
                 f"ln -s {outside}/g /hostfile && ln -s {host.dir}/secret /secret", check=True)
    (host.dir / "secret").write_text("host secret")
    # copying out does not read host files through them
    res = host.minirun("cp", "-L", "s:/secret", str(host.dir / "read"))
    assert res.returncode == 125 and not (host.dir / "read").exists()
    for dest in ("s:/up/f", "s:/host", "s:/hostfile", f"s:/up/../up{outside}/"):
        host.minirun("cp", str(host.dir / "f"), dest)
    assert os.listdir(outside) == []
    # it went inside the container's root instead
    out = host.minirun("exec", "s", "sh", "-c", "cat /f", check=True).stdout
    assert out == "payload"
    # a symlink DEST that does not resolve (in the container) is replaced, not followed
    assert host.minirun("exec", "s", "cat", "/hostfile", check=True).stdout == "payload"
    host.minirun("rm", "-f", "s", check=True)


def test_cp_to_and_from_a_stopped_container(host):
    (host.dir / "in.txt").write_text("in")
    detach(host, "st", "sh", "-c", "echo made > /made")
    assert host.minirun("wait", "st", check=True).stdout == "0\n"
    assert host.minirun("cp", "st:/made", str(host.dir / "out"), check=True).returncode == 0
    assert (host.dir / "out").read_text() == "made\n"
    host.minirun("cp", str(host.dir / "in.txt"), "st:/in.txt", check=True)
    host.minirun("cp", "st:/in.txt", str(host.dir / "back"), check=True)
    assert (host.dir / "back").read_text() == "in"
    host.minirun("rm", "st", check=True)


def test_start_keeps_name_layer_config_and_address(host):
    host.minirun("network", "create", "--subnet", "10.77.0.0/24", "n1", check=True)
    res = host.minirun("run", "-d", "--name", "s", "--network", "n1", "-e", "K=v", R,
                       "sh", "-c", "echo $K >> /runs; cat /runs; exec sleep 1000")
    assert res.returncode == 0, res.stderr
    first = host.record("s")
    host.minirun("stop", "-t", "0", "s", check=True)
    assert host.minirun("start", "s", check=True).stdout == "s\n"
    again = host.record("s")
    assert again["id"] == first["id"] and again["status"] == "running"
    assert again["network"]["ip"] == first["network"]["ip"]
    assert again["pid"] != first["pid"]
    # the writable layer is the same: the file grew by one line, the env came back
    out = host.minirun("exec", "s", "cat", "/runs", check=True).stdout
    assert out == "v\nv\n"
    # starting a running container does nothing; restart stops and starts
    assert host.minirun("start", "s", check=True).stdout == "s\n"
    assert host.minirun("restart", "-t", "0", "s", check=True).stdout == "s\n"
    assert host.minirun("exec", "s", "cat", "/runs", check=True).stdout == "v\nv\nv\n"
    # the address is taken meanwhile: another one
    host.minirun("stop", "-t", "0", "s", check=True)
    res = host.minirun("run", "-d", "--name", "thief", "--network", "n1", "--ip",
                       first["network"]["ip"], R, "sleep", "1000")
    assert res.returncode == 0, res.stderr
    host.minirun("start", "s", check=True)
    third = host.record("s")
    assert third["network"]["ip"] not in (None, first["network"]["ip"])
    assert host.minirun("exec", "s", "ping", "-c1", "-W2", first["network"]["ip"]).returncode == 0
    host.minirun("rm", "-f", "s", "thief", check=True)
    host.minirun("network", "rm", "n1", check=True)


def test_a_failed_start_leaves_the_container_exited(host):
    detach(host, "f", "true")
    host.minirun("wait", "f", check=True)
    res = host.run(MINIRUN_FAULT_START)
    assert res.returncode == 125 and "injected fault at start.go" in res.stderr, res.stderr
    assert status(host, "f") == "exited"
    host.minirun("start", "f", check=True)
    assert host.minirun("wait", "f", check=True).stdout == "0\n"
    # start -a: its output from this start, and its exit code
    res = host.minirun("start", "-a", "f")
    assert res.returncode == 0 and res.stdout == ""
    host.minirun("rm", "f", check=True)
    detach(host, "o", "sh", "-c", "echo out; exit 4")
    assert host.minirun("wait", "o", check=True).stdout == "4\n"
    res = host.minirun("start", "-a", "o")
    assert res.returncode == 4 and res.stdout == "out\n", res
    host.minirun("rm", "o", check=True)


MINIRUN_FAULT_START = f"MINIRUN_FAULT=start.go {sys.executable} -m minirun start f"


def _until(cond, what, timeout=30):
    """Wait for an event (a pause file appearing, a process ending): no assertion on time."""
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


def paused_restarts(host, flag, *args):
    """A minirun command whose container's monitor stops at each restart's backoff
    until `flag` is removed (the monitor inherits the environment)."""
    import shlex
    res = host.run(f"MINIRUN_PAUSE_AT=restart.backoff={flag} {shlex.join(MINIRUN)} "
                   f"{shlex.join(args)}")
    assert res.returncode == 0, res.stderr


def run_paused_restarts(host, flag, *args):
    paused_restarts(host, flag, "run", "-d", "--network", "none", *args)


def owner_gone(host, name):
    rec = host.record(name)
    return lambda: not os.path.exists(f"/proc/{rec['owner_pid']}")


def test_restart_on_failure_counts_and_backs_off(host):
    flag = host.dir / "backoff"
    run_paused_restarts(host, flag, "--restart", "on-failure:2", "--name", "r", R,
                        "sh", "-c", "echo run >> /runs; exit 3")
    for n in (0, 1):
        _until(flag.exists, "the monitor waits for restart {n + 1}")
        rec = host.record("r")
        assert rec["status"] == "restarting" and rec["restart_count"] == n
        assert "Restarting (3)" in host.minirun("ps", check=True).stdout
        assert host.minirun("wait", "r", check=True).stdout == "3\n"
        flag.unlink()
    # the third run fails too: on-failure:2 is spent
    _until(lambda: (lambda r: r["status"] == "exited" and r["restart_count"] == 2)(
        host.record("r")), "the last exit")
    _until(owner_gone(host, "r"), "the last monitor ends")
    assert not flag.exists()
    host.minirun("cp", "r:/runs", str(host.dir / "runs"), check=True)
    assert (host.dir / "runs").read_text() == "run\nrun\nrun\n"  # one layer, three runs
    host.minirun("rm", "r", check=True)


def test_stop_and_rm_call_the_restart_off(host):
    flag = host.dir / "backoff"
    run_paused_restarts(host, flag, "--restart", "always", "--name", "a", R, "true")
    _until(flag.exists, "the monitor waits to restart")
    assert host.minirun("stop", "a", check=True).stdout == "a\n"
    assert host.record("a")["status"] == "exited"
    gone = owner_gone(host, "a")
    flag.unlink()
    _until(gone, "the monitor gives the restart up")
    rec = host.record("a")
    assert rec["status"] == "exited" and rec["restart_count"] == 0
    # a start by hand brings the policy back; rm -f while it waits ends it for good
    paused_restarts(host, flag, "start", "a")
    _until(flag.exists, "the monitor waits to restart again")
    gone = owner_gone(host, "a")
    host.minirun("rm", "-f", "a", check=True)
    flag.unlink()
    _until(gone, "the monitor gives the restart up")
    assert host.minirun("inspect", "a").returncode == 1
    # kill of a running container: stopped by the user, not restarted
    run_paused_restarts(host, flag, "--restart", "always", "--name", "k", R, "sleep", "1000")
    host.minirun("kill", "k", check=True)
    assert host.minirun("wait", "k", check=True).stdout == "137\n"
    _until(owner_gone(host, "k"), "the monitor ends")
    assert not flag.exists()
    assert host.record("k")["status"] == "exited"
    host.minirun("rm", "k", check=True)


def test_restart_option_errors(host):
    for args in (("--restart", "sometimes"), ("--restart", "always", "--rm", "-d"),
                 ("--restart", "always")):
        res = host.minirun("run", *args, R, "true")
        assert res.returncode == 125 and res.stderr.startswith("minirun: "), res.stderr


def _read_until(fd, want, timeout=30):
    import select
    import time
    got = b""
    deadline = time.monotonic() + timeout
    while want not in got:
        r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            raise AssertionError(f"never saw {want!r}; got {got!r}")
        got += os.read(fd, 65536)
    return got


def test_run_dit_attach_and_the_detach_keys(host):
    import pty
    import subprocess
    res = host.minirun("run", "-dit", "--name", "t", "--network", "none", R, "sh")
    assert res.returncode == 0, res.stderr
    m, s = pty.openpty()
    p = host.popen(MINIRUN + ["attach", "t"], stdin=s, stdout=s, stderr=s)
    os.close(s)
    import termios
    # attach makes the terminal raw (which flushes what was typed before): wait for it
    _until(lambda: not termios.tcgetattr(m)[3] & termios.ECHO, "attach's raw mode")
    os.write(m, b"echo hel''lo\n")
    _read_until(m, b"hello\r\n")
    os.write(m, b"\x10\x11")  # ctrl-p ctrl-q: detach, the container runs on
    _read_until(m, b"read escape sequence")
    assert p.wait(timeout=30) == 0
    os.close(m)
    assert status(host, "t") == "running"
    assert "hello" in host.minirun("logs", "t", check=True).stdout
    # attach again (stdin no terminal here): its exit ends attach with its code
    p = host.popen(MINIRUN + ["attach", "--detach-keys", "ctrl-x,x", "t"],
                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(b"exit 5\n", timeout=30)
    assert p.returncode == 5, err
    assert status(host, "t") == "exited"
    assert host.minirun("attach", "t").returncode == 125  # not running
    detach(host, "plain", "sleep", "1000")
    res = host.minirun("attach", "plain")
    assert res.returncode == 125 and "no terminal" in res.stderr
    host.minirun("rm", "-f", "t", "plain", check=True)
