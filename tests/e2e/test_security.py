"""Security: a hostile rootfs, leaked fds, the working directory, exec, masks, env, PIDs.

Each test runs in a throwaway host (the `host` fixture). Hostile rootfs copies are
made with `cp -a` in tmp_path, next to a host directory ("outside") and a host file
("victim") that the links point at: after the run both must be exactly as before,
and nothing may be mounted on them, whether the run succeeded or failed.
"""
import os
import shutil
import subprocess
import time

import pytest

from harness import MINIRUN, ROOTFS

R = str(ROOTFS)
MINI = " ".join(MINIRUN)


def run(host, *args, **kw):
    return host.minirun("run", "--rm", "--network", "none", *args, **kw)


def copy_rootfs(tmp_path, name="rootfs"):
    dst = tmp_path / name
    subprocess.run(["cp", "-a", R, str(dst)], check=True)
    return dst


def replace(path, make):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    make(path)


def assert_failed_cleanly(res):
    assert res.returncode == 125, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minirun: "), res.stderr
    assert "Traceback" not in res.stderr


def mountinfo(host):
    """The mounts of the throwaway host (private: only minirun can change them here)."""
    return host.sh("cat /proc/self/mountinfo")


class Bait:
    """A host directory and a host file that a hostile rootfs points at."""

    def __init__(self, tmp_path):
        self.dir = tmp_path / "outside-X"
        self.dir.mkdir()
        self.victim = tmp_path / "victim"
        self.victim.write_text("host secret\n")
        old = time.time() - 3600
        os.utime(self.victim, (old, old))
        os.utime(self.dir, (old, old))
        self.tmp = str(tmp_path)

    def state(self):
        v, d = self.victim.stat(), self.dir.stat()
        return (self.victim.read_text(), v.st_ino, v.st_dev, v.st_mtime_ns, v.st_ctime_ns,
                os.listdir(self.dir), d.st_mtime_ns, d.st_ino)

    def check(self, host, before_state, before_mounts, res):
        assert self.state() == before_state, res.stderr
        after = mountinfo(host)
        # nothing new (mounts may vanish: other tests remove their mount points on the host)
        assert set(after.splitlines()) <= set(before_mounts.splitlines())
        assert self.tmp not in after
        # the real host changes under other tests: only look for our paths there
        assert self.tmp not in open("/proc/self/mountinfo").read()


# Hostile rootfs layouts. {o}: the host directory, {v}: the host victim file, {up}: enough
# ../ to climb from anywhere in the copy to the host's /.
UP = "../" * 12
HOSTILE = {
    "etc-abs": ("etc", "link", "{o}"),
    "etc-rel": ("etc", "link", "{up}{o}"),
    "proc-abs": ("proc", "link", "{o}"),
    "proc-rel": ("proc", "link", "{up}{o}"),
    "sys-abs": ("sys", "link", "{o}"),
    "sys-rel": ("sys", "link", "{up}{o}"),
    "dev-abs": ("dev", "link", "{o}"),
    "dev-rel": ("dev", "link", "{up}{o}"),
    "resolv-abs": ("etc/resolv.conf", "link", "{v}"),
    "resolv-rel": ("etc/resolv.conf", "link", "{up}{v}"),
    "hosts-abs": ("etc/hosts", "link", "{v}"),
    "hosts-rel": ("etc/hosts", "link", "../../victim"),  # the copy is in tmp_path, next to it
    "hostname-abs": ("etc/hostname", "link", "{v}"),
    # magic links: once the container's /proc is mounted, /proc/1/root is the host's root
    "etc-magic": ("etc", "link", "/proc/1/root{o}"),
    "resolv-magic": ("etc/resolv.conf", "link", "/proc/1/root{v}"),
    "dev-magic": ("dev", "link", "/proc/self/cwd{o}"),
    "proc-file": ("proc", "file", None),
    "sys-file": ("sys", "file", None),
    "dev-fifo": ("dev", "fifo", None),
    "etc-file": ("etc", "file", None),
    "hosts-dir": ("etc/hosts", "dir", None),
    "resolv-fifo": ("etc/resolv.conf", "fifo", None),
    # a mount point that is the root itself would hide the whole rootfs (see rootfs.py)
    "proc-root": ("proc", "link", "/"),
    "dev-root": ("dev", "link", "/"),
    "sys-root": ("sys", "link", "../.."),
    # links that stay inside the rootfs: allowed, but everything must stay inside
    "etc-root": ("etc", "link", "/"),
    "sys-to-proc": ("sys", "link", "proc"),
    "etc-in-root": ("etc", "link", "/tmp"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_rootfs_never_touches_the_host(host, tmp_path, case):
    bait = Bait(tmp_path)
    root = copy_rootfs(tmp_path)
    path, kind, target = HOSTILE[case]
    makers = {
        "link": lambda p: os.symlink(target.format(o=bait.dir, v=bait.victim, up=UP), p),
        "file": lambda p: p.write_text("not a directory\n"),
        "fifo": os.mkfifo,
        "dir": lambda p: p.mkdir(),
    }
    replace(root / path, makers[kind])
    before, mounts = bait.state(), mountinfo(host)
    res = run(host, str(root), "sh", "-c",
              "cat /etc/hostname /etc/hosts /etc/resolv.conf >/dev/null; echo ran")
    if res.returncode != 0:
        assert_failed_cleanly(res)
    else:
        assert res.stdout.strip().endswith("ran")
    bait.check(host, before, mounts, res)


@pytest.mark.parametrize("link", ["/", "../..", "/bin/.."])
def test_mount_point_resolving_to_the_root_itself_is_refused(host, tmp_path, link):
    # Before the fix in rootfs.py, /proc -> / stacked procfs over the whole rootfs; the
    # masks and read-only steps then resolved below it and were skipped, so the
    # container's / was a writable, unmasked procfs.
    root = copy_rootfs(tmp_path)
    replace(root / "proc", lambda p: os.symlink(link, p))
    res = run(host, str(root), "echo", "ran")
    assert_failed_cleanly(res)
    assert "ran" not in res.stdout
    assert "refusing to mount on /proc: it resolves to the root" in res.stderr, res.stderr


def test_rootfs_error_is_reported_not_the_start_race(host, tmp_path):
    root = copy_rootfs(tmp_path)
    replace(root / "proc", lambda p: p.write_text("not a directory\n"))
    for _ in range(5):
        res = run(host, str(root), "true")
        assert_failed_cleanly(res)
        assert "refusing to mount on /proc" in res.stderr, res.stderr


def test_device_nodes_shipped_in_the_rootfs_are_unusable(host, tmp_path):
    root = copy_rootfs(tmp_path)
    dev = os.stat("/dev/vda").st_rdev if os.path.exists("/dev/vda") else os.makedev(8, 0)
    os.mknod(root / "tmp" / "disk", 0o600 | 0o060000, dev)
    res = run(host, str(root), "sh", "-c", "dd if=/tmp/disk of=/dev/null bs=512 count=1 "
                                           "2>/dev/null && echo opened; "
                                           "grep ' / / ' /proc/self/mountinfo")
    assert "opened" not in res.stdout
    assert "nodev" in res.stdout.split("\n")[-2].split()[5].split(","), res.stdout


def test_hostile_etc_links_with_targets_inside_succeed_inside(host, tmp_path):
    # /etc/resolv.conf -> HOST PATH, and that path also exists inside the copy: the bind
    # lands on the copy's file (in the overlay), the host file and the copy stay untouched.
    bait = Bait(tmp_path)
    root = copy_rootfs(tmp_path)
    twin = root / str(bait.victim).lstrip("/")
    twin.parent.mkdir(parents=True)
    twin.write_text("twin inside the rootfs\n")
    replace(root / "etc" / "resolv.conf", lambda p: os.symlink(str(bait.victim), p))
    before, mounts = bait.state(), mountinfo(host)
    res = run(host, str(root), "sh", "-c", f"cat /etc/resolv.conf; echo ---; cat {bait.victim}")
    assert res.returncode == 0, res.stderr
    mine, _, twin_seen = res.stdout.partition("---\n")
    assert "host secret" not in res.stdout
    assert mine == twin_seen != "twin inside the rootfs\n"  # minirun's resolv.conf, via the link
    assert twin.read_text() == "twin inside the rootfs\n"  # the image is never written
    bait.check(host, before, mounts, res)


@pytest.mark.parametrize("target", ["abs", "rel", "parent"])
def test_volume_target_symlink_to_the_host_does_not_mount_there(host, tmp_path, target):
    bait = Bait(tmp_path)
    root = copy_rootfs(tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    (src / "payload").write_text("volume\n")
    link = {"abs": str(bait.dir), "rel": UP + str(bait.dir).lstrip("/"),
            "parent": str(tmp_path)}[target]
    os.symlink(link, root / "data")
    spec = f"{src}:/data" if target != "parent" else f"{src}:/data/outside-X"
    before, mounts = bait.state(), mountinfo(host)
    res = run(host, "-v", spec + ":ro", str(root), "sh", "-c", "ls -R /data")
    if res.returncode != 0:
        assert_failed_cleanly(res)
    else:
        assert "payload" in res.stdout
    bait.check(host, before, mounts, res)
    assert os.listdir(src) == ["payload"]


def test_volume_target_through_a_magic_link_is_refused(host, tmp_path):
    bait = Bait(tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    before, mounts = bait.state(), mountinfo(host)
    res = run(host, "-v", f"{src}:/proc/1/root{bait.dir}", R, "true")
    assert_failed_cleanly(res)
    bait.check(host, before, mounts, res)


# -- file descriptors and the working directory (CVE-2024-21626) --------------------------

def test_no_fd_beyond_2_reaches_the_command(host, tmp_path):
    res = host.run(f"exec 5</etc/hostname 7<{tmp_path} 9>{tmp_path}/w; "
                   f"{MINI} run --rm --network none {R} sh -c 'ls /proc/self/fd; ls /proc/1/fd'")
    assert res.returncode == 0, res.stderr
    # ls's own directory fd is 3 in the first listing; PID 1 (sh) has only 0-2 and 10 (its
    # copy of the script): no fd 5, 7 or 9
    first, second = res.stdout.split("\n", 4)[:4], res.stdout.split()[4:]
    assert [x.strip() for x in first] == ["0", "1", "2", "3"]
    assert not {"5", "7", "9"} & set(second), res.stdout


def test_cwd_of_the_command_is_inside_the_root(host, tmp_path):
    res = host.minirun("run", "-d", "--name", "cwd", "--network", "none", "-w", "/tmp", R,
                       "sleep", "1000", check=True)
    try:
        pid = host.record("cwd")["pid"]
        root = os.readlink(f"/proc/{pid}/root")
        cwd = os.readlink(f"/proc/{pid}/cwd")
        assert cwd == root.rstrip("/") + "/tmp" or cwd == "/tmp", (root, cwd)
        assert os.path.samefile(f"/proc/{pid}/cwd", f"/proc/{pid}/root/tmp")
    finally:
        host.minirun("rm", "-f", "cwd")
    assert res.stdout.strip()


def test_workdir_through_a_leaked_fd_does_not_escape(host, tmp_path):
    (tmp_path / "HOST-MARKER").write_text("")
    res = host.run(f"exec 7<{tmp_path}; {MINI} run --rm --network none -w /proc/self/fd/7 {R} "
                   "sh -c 'ls; ls ../../../../../../..'")
    assert "HOST-MARKER" not in res.stdout
    assert "work" not in res.stdout.split()  # the host's / (/work) is not reachable
    if res.returncode != 0:
        assert_failed_cleanly(res)


def test_exec_workdir_through_a_leaked_fd_does_not_escape(host, tmp_path):
    (tmp_path / "HOST-MARKER").write_text("")
    host.minirun("run", "-d", "--name", "ex", "--network", "none", R, "sleep", "1000",
                 check=True)
    try:
        res = host.run(f"exec 7<{tmp_path}; {MINI} exec -w /proc/self/fd/7 ex "
                       "sh -c 'ls; readlink /proc/self/cwd; ls /proc/self/fd'")
        assert "HOST-MARKER" not in res.stdout
        if res.returncode == 0:
            lines = res.stdout.split()
            assert lines[-4:] == ["0", "1", "2", "3"]
    finally:
        host.minirun("rm", "-f", "ex")


# -- minirun exec ------------------------------------------------------------------------

def status_fields(text):
    return dict(l.split(":\t", 1) for l in text.strip().splitlines() if ":\t" in l)


def test_exec_lands_in_the_container_with_its_privileges(host, tmp_path):
    host.minirun("run", "-d", "--name", "sec", "--network", "none", R, "sleep", "1000",
                 check=True)
    try:
        ls = host.minirun("exec", "sec", "ls", "/", check=True).stdout.split()
        assert set(ls) >= set(os.listdir(R)) and "work" not in ls
        q = "grep -E '^(Cap(Eff|Prm|Bnd|Inh|Amb)|NoNewPrivs)' /proc/{}/status"
        pid1 = status_fields(host.minirun("exec", "sec", "sh", "-c", q.format(1),
                                          check=True).stdout)
        me = status_fields(host.minirun("exec", "sec", "sh", "-c", q.format("self"),
                                        check=True).stdout)
        assert me == pid1
        assert me["NoNewPrivs"] == "1" and not int(me["CapEff"], 16) & (1 << 21)
        assert int(me["CapInh"], 16) == 0 and int(me["CapAmb"], 16) == 0
        out = host.minirun("exec", "sec", "sh", "-c", "readlink /proc/self/cwd; "
                           "cat /proc/self/mountinfo | head -1", check=True).stdout.split("\n")
        assert out[0] == "/" and out[1].split()[4] == "/"
        env = host.run(f"SECRET_TOKEN=x {MINI} exec sec env").stdout
        assert "SECRET_TOKEN" not in env
    finally:
        host.minirun("rm", "-f", "sec")


# -- masks, read-only paths, devices ------------------------------------------------------

def test_masked_paths_cannot_be_unmounted_and_proc_sys_is_read_only(host):
    script = ("for p in /proc/kcore /proc/keys /proc/timer_list /proc/acpi /proc/scsi "
              "/sys/firmware /proc/sys; do umount $p 2>/dev/null && echo umount:$p; "
              "umount -l $p 2>/dev/null && echo lazy:$p; done; "
              "mount -o remount,rw /proc/sys 2>/dev/null && echo remount:sys; "
              "mount -o remount,rw /sys 2>/dev/null && echo remount:/sys; "
              "echo x > /proc/sys/kernel/hostname 2>/dev/null && echo wrote:hostname; "
              "echo x > /proc/sys/vm/drop_caches 2>/dev/null && echo wrote:vm; "
              "echo h > /proc/sysrq-trigger 2>/dev/null && echo wrote:sysrq; "
              "touch /sys/x 2>/dev/null && echo wrote:/sys; "
              "echo 1 > /sys/kernel/profiling 2>/dev/null && echo wrote:/sys/kernel; "
              "cat /proc/kcore /proc/keys | wc -c; ls /proc/acpi /sys/firmware | wc -l; "
              "grep -E ' /(sys|proc/sys) ' /proc/self/mountinfo")
    res = run(host, R, "sh", "-c", script)
    lines = res.stdout.strip().splitlines()
    assert not [l for l in lines if ":" in l and l.split(":")[0] in
                ("umount", "lazy", "remount", "wrote")], res.stdout
    assert lines[0].strip() == "0"
    mounts = [l.split() for l in lines[2:]]
    assert {m[4] for m in mounts} == {"/sys", "/proc/sys"}
    for m in mounts:
        assert "ro" in m[5].split(","), m


def test_mknod_of_a_block_device_fails(host):
    res = run(host, R, "sh", "-c", "mknod /dev/sda b 8 0 && echo made; "
                                   "mknod /tmp/sda b 8 0 && echo made2; ls /dev")
    assert "made" not in res.stdout
    assert "sda" not in res.stdout.split()


# -- environment ------------------------------------------------------------------------

def test_host_environment_does_not_leak(host):
    res = host.run(f"SECRET_TOKEN=x MINIRUN_SECRET=y {MINI} run --rm --network none "
                   f"-e A=1 -e 'B=two words' {R} env")
    assert res.returncode == 0, res.stderr
    env = dict(l.split("=", 1) for l in res.stdout.splitlines())
    assert set(env) == {"PATH", "HOME", "HOSTNAME", "A", "B"}, env
    assert env["A"] == "1" and env["B"] == "two words" and env["HOME"] == "/root"
    assert "SECRET_TOKEN" not in res.stdout and "MINIRUN" not in res.stdout


# -- processes ------------------------------------------------------------------------

def test_container_sees_only_its_own_processes(host):
    res = run(host, R, "sh", "-c", "sleep 30 & ps -o pid,args; ls -d /proc/[0-9]*")
    assert res.returncode == 0, res.stderr
    out = res.stdout.split("\n")
    rows = [l.split(None, 1) for l in out[1:] if l.strip() and not l.startswith("/proc")]
    assert {r[0] for r in rows} <= {"1", "2", "3"} and len(rows) == 3, rows
    procs = [l for l in out if l.startswith("/proc/")]
    assert all(int(p.split("/")[2]) <= 10 for p in procs), procs


def test_container_cannot_signal_a_host_process(host):
    victim = host.popen(["sleep", "1000"])
    try:
        # the host fixture shares our PID namespace: victim.pid is the host PID
        res = run(host, R, "sh", "-c", f"kill -KILL {victim.pid}; echo rc=$?; "
                                       f"kill -0 {victim.pid}; echo rc0=$?")
        assert "rc=0" not in res.stdout and "rc0=0" not in res.stdout, res.stdout
        time.sleep(0.2)
        assert victim.poll() is None, "the host process was killed from the container"
    finally:
        victim.kill()
        victim.wait()
