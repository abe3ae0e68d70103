"""The child's namespace and mount sequence (init.setup) against the recording fake kernel.

No root, no fork, no exec: every namespace and mount operation of the container's
first process goes through the kernel object it is given, so the exact order --
unshare, / private, the overlay, the mount plan, pivot_root, the umount of the old
root, --read-only, sethostname -- is checked call by call.
"""
import os

import pytest

from fakes import FakeKernel
from minirun import init, rootfs
from minirun import kernel as k
from minirun.errors import MinirunError
from minirun.rootfs import plan
from minirun.spec import Volume

FLAGS = k.CLONE_NEWNS | k.CLONE_NEWPID | k.CLONE_NEWUTS | k.CLONE_NEWIPC | k.CLONE_NEWNET
RO = k.MOUNT_ATTR_RDONLY | k.MOUNT_ATTR_NOSUID | k.MOUNT_ATTR_NODEV


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A merged root with the usual directories, a volume source, the /etc files, and
    chdir recorded instead of done (pivot_into changes directory)."""
    merged = tmp_path / "merged"
    for d in ("proc", "dev", "sys", "etc", "tmp"):
        (merged / d).mkdir(parents=True)
    etc = {}
    for n in ("hostname", "hosts", "resolv.conf"):
        (merged / "etc" / n).write_text("")
        (tmp_path / n).write_text(f"minirun {n}\n")
        etc[f"/etc/{n}"] = str(tmp_path / n)
    src = tmp_path / "vol"
    src.mkdir()
    fake = FakeKernel()
    monkeypatch.setattr(rootfs.os, "chdir", lambda p: fake.calls.append(("chdir", p)))
    return tmp_path, merged, etc, src, fake


def child_plan(tmp_path, merged, steps, **kw):
    return init.ChildPlan(lower=str(tmp_path / "image"), upper=str(tmp_path / "upper"),
                          work=str(tmp_path / "work"), merged=str(merged),
                          unshare_flags=FLAGS, hostname="web1", steps=steps,
                          argv=["true"], env={}, **kw)


def without_devices(steps):
    return [s for s in steps if s.kind != "devices"]  # mknod needs root


def test_child_sequence_exact_order(world):
    tmp_path, merged, etc, src, fake = world
    steps = without_devices(plan(volumes=[Volume(str(src), "/data", True)], etc_files=etc))
    # after pivot_root the fake's mount table is the container's: / and below it
    fake.mount_table = [(1, 1, "/", "rw"), (2, 1, "/proc", "rw"), (3, 1, "/dev", "rw"),
                        (4, 3, "/dev/shm", "rw"), (5, 1, "/sys", "ro")]
    cp = child_plan(tmp_path, merged, steps, read_only=True)
    init.setup(cp, fake, ns_ready=lambda: fake.calls.append(("ns_ready",)))

    m = str(merged)
    nsn = k.MS_NOSUID | k.MS_NODEV | k.MS_NOEXEC
    overlay = (f"lowerdir={tmp_path}/image,upperdir={tmp_path}/upper,"
               f"workdir={tmp_path}/work")
    ro_root = k.MOUNT_ATTR_RDONLY | k.MOUNT_ATTR_NODEV
    assert [c for c in fake.calls if c[0] != "openat2"] == [
        ("unshare", FLAGS),
        ("ns_ready",),
        ("mount", None, "/", None, k.MS_REC | k.MS_PRIVATE, None, None),
        ("mount", "overlay", m, "overlay", k.MS_NODEV, overlay, m),
        ("mount", "proc", f"{m}/proc", "proc", nsn, None, "/proc"),
        ("mount", "tmpfs", f"{m}/dev", "tmpfs", k.MS_NOSUID, "mode=755,size=65536k", "/dev"),
        ("mount", "devpts", f"{m}/dev/pts", "devpts", k.MS_NOSUID | k.MS_NOEXEC,
         "newinstance,ptmxmode=0666,mode=0620,gid=5", "/dev/pts"),
        ("mount", "shm", f"{m}/dev/shm", "tmpfs", nsn, "mode=1777,size=65536k", "/dev/shm"),
        ("mount", "mqueue", f"{m}/dev/mqueue", "mqueue", nsn, None, "/dev/mqueue"),
        ("mount", "sysfs", f"{m}/sys", "sysfs", nsn | k.MS_RDONLY, None, "/sys"),
        ("mount", etc["/etc/hostname"], f"{m}/etc/hostname", None, k.MS_BIND, None,
         "/etc/hostname"),
        ("mount", etc["/etc/hosts"], f"{m}/etc/hosts", None, k.MS_BIND, None, "/etc/hosts"),
        ("mount", etc["/etc/resolv.conf"], f"{m}/etc/resolv.conf", None, k.MS_BIND, None,
         "/etc/resolv.conf"),
        ("mount", str(src), f"{m}/data", None, k.MS_BIND | k.MS_REC, None, "/data"),
        ("mount_setattr", f"{m}/data", k.AT_EMPTY_PATH | k.AT_RECURSIVE, RO, 0),
        # (the fake's mounts leave /proc empty: masks and read-only paths are skipped)
        ("chdir", m),
        ("pivot_root", ".", "."),
        ("umount", ".", k.MNT_DETACH),
        ("chdir", "/"),
        # --read-only: / and /sys, not /proc, /dev or what is below them
        ("mount_setattr", "/", k.AT_EMPTY_PATH, ro_root, 0),
        ("mount_setattr", "/sys", k.AT_EMPTY_PATH, ro_root, 0),
        ("sethostname", "web1"),
    ]
    # every path of the mount plan was resolved inside the new root
    assert all(c[3] == k.RESOLVE_IN_ROOT | k.RESOLVE_NO_MAGICLINKS
               for c in fake.calls if c[0] == "openat2" and not c[1].startswith("/"))


def test_child_sequence_joining_a_network_namespace(world):
    tmp_path, merged, etc, src, fake = world
    netns = os.open("/dev/null", os.O_RDONLY)
    cp = child_plan(tmp_path, merged, [], join_netns_fd=netns)
    cp = cp._replace(unshare_flags=FLAGS & ~k.CLONE_NEWNET)
    init.setup(cp, fake, ns_ready=lambda: fake.calls.append(("ns_ready",)))
    assert [c[0] for c in fake.calls] == ["unshare", "setns", "ns_ready", "mount", "mount",
                                          "chdir", "pivot_root", "umount", "chdir",
                                          "sethostname"]
    assert fake.calls[0] == ("unshare", FLAGS & ~k.CLONE_NEWNET)
    assert fake.calls[1] == ("setns", k.CLONE_NEWNET, "network namespace")
    with pytest.raises(OSError):
        os.fstat(netns)  # closed once joined: it must not reach the container


def test_child_sequence_stops_at_the_first_failure(world):
    tmp_path, merged, etc, src, fake = world
    fake.fail = {"pivot_root": 22}
    cp = child_plan(tmp_path, merged, without_devices(plan(etc_files=etc)), read_only=True)
    with pytest.raises(MinirunError, match="pivot_root"):
        init.setup(cp, fake)
    # no umount of the host's root, no read-only remount, no hostname
    assert fake.ops()[-2:] == ["chdir", "pivot_root"]
