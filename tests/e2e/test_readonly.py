"""Read-only mounts are read-only all the way down (`mount_setattr` with AT_RECURSIVE).

A `-v HOST:CTR:ro` bind is recursive: whatever is mounted below HOST comes along. A
plain MS_REMOUNT|MS_RDONLY only changes the top mount, so before the fix a tmpfs
mounted below the volume source stayed writable from inside the container and the
writes reached the host. The host side of each test lives in the throwaway host's
mount namespace (the tmpfs is mounted there, in `host.dir`, removed by host.close()),
so nothing is left on the real machine.
"""
import pytest

from harness import MINIRUN, ROOTFS

R = str(ROOTFS)


def run(host, *args, **kw):
    return host.minirun("run", "--rm", "--network", "none", *args, **kw)


@pytest.fixture
def volume(host):
    """A host directory with a tmpfs mounted below it (and one below that), in the
    throwaway host's mount namespace only."""
    src = host.dir / "vol"
    host.sh(f"mkdir -p {src}/sub && mount -t tmpfs -o size=1m sub {src}/sub && "
            f"mkdir {src}/sub/deeper && mount -t tmpfs -o size=1m deeper {src}/sub/deeper && "
            f"echo host > {src}/sub/f && echo host > {src}/sub/deeper/f")
    return src


WRITE = ("for p in /v/top /v/sub/f /v/sub/new /v/sub/deeper/f /v/sub/deeper/new; do "
         "echo P > $p 2>/dev/null && echo wrote:$p; done; "
         "grep ' /v' /proc/self/mountinfo")


def host_view(host, src):
    return host.sh(f"cat {src}/sub/f {src}/sub/deeper/f; ls {src} {src}/sub {src}/sub/deeper")


def test_ro_volume_submounts_are_read_only(host, volume):
    before = host_view(host, volume)
    res = run(host, "-v", f"{volume}:/v:ro", R, "sh", "-c", WRITE)
    assert res.returncode == 0, res.stderr
    assert "wrote:" not in res.stdout, res.stdout
    mounts = [l.split() for l in res.stdout.splitlines()]
    assert [m[4] for m in mounts] == ["/v", "/v/sub", "/v/sub/deeper"]
    for m in mounts:
        opts = m[5].split(",")
        assert "ro" in opts and "nosuid" in opts and "nodev" in opts, m
    assert host_view(host, volume) == before  # nothing reached the host
    host.sh(f"umount {volume}/sub/deeper {volume}/sub")


def test_rw_volume_submounts_stay_writable(host, volume):
    res = run(host, "-v", f"{volume}:/v:rw", R, "sh", "-c", WRITE)
    assert res.returncode == 0, res.stderr
    wrote = [l for l in res.stdout.splitlines() if l.startswith("wrote:")]
    assert len(wrote) == 5, res.stdout
    assert host.sh(f"cat {volume}/sub/f {volume}/sub/deeper/new") == "P\nP\n"
    host.sh(f"umount {volume}/sub/deeper {volume}/sub")


def test_read_only_root_keeps_dev_proc_and_rw_volumes_writable(host, volume):
    # Docker's --read-only: the rootfs (and the /etc files minirun binds into it) is
    # read-only; /dev, /dev/shm, /proc and the volumes asked for rw are not.
    rw = host.dir / "rw"
    host.sh(f"mkdir -p {rw}")
    script = ("for p in /x /etc/x /etc/hosts /etc/hostname /etc/resolv.conf /tmp/x "
              "/dev/shm/x /dev/x /rw/x /v/sub/f /v/sub/deeper/f; do "
              "echo P > $p 2>/dev/null && echo wrote:$p; done; "
              "echo name > /proc/self/comm && echo wrote:/proc; "
              "mkdir /dev/mqueue/x 2>/dev/null; touch /dev/mqueue/q && echo wrote:mqueue; "
              "awk '$5 == \"/\"' /proc/self/mountinfo")
    res = run(host, "--read-only", "-v", f"{rw}:/rw", "-v", f"{volume}:/v:ro", R,
              "sh", "-c", script)
    assert res.returncode == 0, res.stderr
    wrote = {l.split(":", 1)[1] for l in res.stdout.splitlines() if l.startswith("wrote:")}
    assert wrote == {"/dev/shm/x", "/dev/x", "/rw/x", "/proc", "mqueue"}, res.stdout
    root = res.stdout.splitlines()[-1].split()
    assert root[4] == "/" and "ro" in root[5].split(",") and "nodev" in root[5].split(",")
    assert host.sh(f"cat {rw}/x") == "P\n"
    host.sh(f"umount {volume}/sub/deeper {volume}/sub")


def test_read_only_proc_paths_are_read_only_with_what_is_below(host):
    res = run(host, R, "sh", "-c", "grep -E ' /proc/(sys|bus|fs|irq|sysrq-trigger) ' "
                                   "/proc/self/mountinfo")
    lines = [l.split() for l in res.stdout.splitlines()]
    assert "/proc/sys" in {m[4] for m in lines}, res.stdout
    for m in lines:
        assert {"ro", "nosuid", "nodev"} <= set(m[5].split(",")), m


FALLBACK = """
import errno, os, sys
from minirun import kernel as k, rootfs
from minirun.errors import SyscallError

class Before512(k.LinuxKernel):  # a kernel without mount_setattr
    def mount_setattr(self, *args, **kw):
        raise SyscallError("mount_setattr", None, errno.ENOSYS)

src, dst = sys.argv[1:]
k.kernel.mount(src, dst, None, k.MS_BIND | k.MS_REC)
fd = os.open(dst, os.O_PATH)
rootfs.make_readonly(Before512(), fd, dst)
"""


def test_without_mount_setattr_every_submount_is_remounted(host, volume):
    # The fallback for kernels before 5.12, against the real kernel: what mountinfo lists
    # below the bind is remounted read-only one by one (in the throwaway host).
    dst = host.dir / "dst"
    host.sh(f"mkdir {dst}")
    res = host.run([MINIRUN[0], "-c", FALLBACK, str(volume), str(dst)])
    assert res.returncode == 0, res.stderr
    out = host.run(f"for p in {dst}/x {dst}/sub/f {dst}/sub/deeper/f; do "
                   f"echo P > $p 2>/dev/null && echo wrote:$p; done; "
                   f"grep ' {dst}' /proc/self/mountinfo").stdout
    assert "wrote:" not in out, out
    mounts = [l.split() for l in out.splitlines()]
    assert [m[4] for m in mounts] == [str(dst), f"{dst}/sub", f"{dst}/sub/deeper"]
    for m in mounts:
        assert {"ro", "nosuid", "nodev"} <= set(m[5].split(",")), m
    assert host.sh(f"cat {volume}/sub/f; echo ok > {volume}/sub/f") == "host\n"  # host: rw
    host.sh(f"umount -R {dst} && umount {volume}/sub/deeper {volume}/sub")
