"""rootfs.plan() (pure) and RootFS/pivot_into against a recording fake kernel: no root needed.

The fake really calls openat2 (unprivileged), so the path-safety rules run on a
real directory tree, including hostile ones; mounts are only recorded, with the
path their /proc/self/fd/N target stood for at the time.
"""
import os
import shutil
import stat

import pytest

from fakes import FakeKernel
from minirun import kernel as k
from minirun import rootfs
from minirun.errors import MinirunError
from minirun.rootfs import (MASKED_DIRS, MASKED_FILES, NOSUID_NODEV_NOEXEC, READONLY_PATHS,
                            MountStep, RootFS, pivot_into, plan)
from minirun.spec import Volume

ETC = ("hostname", "hosts", "resolv.conf")


def etc_files(d):
    out = {}
    for n in ETC:
        (d / n).write_text(f"minirun {n}\n")
        out[f"/etc/{n}"] = str(d / n)
    return out


# -- plan() -------------------------------------------------------------------

def test_plan_base_mounts_in_order():
    steps = plan()
    head = [(s.target, s.fstype, s.kind) for s in steps[:7]]
    assert head == [("/proc", "proc", "dir"), ("/dev", "tmpfs", "dir"), ("/dev", None, "devices"),
                    ("/dev/pts", "devpts", "dir"), ("/dev/shm", "tmpfs", "dir"),
                    ("/dev/mqueue", "mqueue", "dir"), ("/sys", "sysfs", "dir")]
    proc, dev, _, pts, shm, mq, sys_ = steps[:7]
    assert proc.flags == NOSUID_NODEV_NOEXEC
    assert dev.flags == k.MS_NOSUID and not dev.flags & k.MS_NODEV  # device nodes must work
    assert "newinstance" in pts.data and pts.flags & k.MS_NOSUID
    assert shm.flags == mq.flags == NOSUID_NODEV_NOEXEC
    assert sys_.flags & k.MS_RDONLY and sys_.flags & NOSUID_NODEV_NOEXEC == NOSUID_NODEV_NOEXEC
    assert not any(s.optional for s in steps[:7])


def test_plan_without_extras_ends_with_masks_then_readonly():
    steps = plan()
    tail = steps[7:]
    masks = [s for s in tail if s.kind == "mask"]
    ro = [s for s in tail if s.kind == "readonly"]
    assert len(tail) == len(masks) + len(ro)
    assert [s.target for s in masks] == list(MASKED_FILES + MASKED_DIRS)
    assert [s.target for s in ro] == list(READONLY_PATHS)
    assert all(s.optional for s in tail)
    assert tail.index(ro[0]) > tail.index(masks[-1])
    for p in ("/proc/kcore", "/proc/keys", "/proc/acpi", "/proc/scsi", "/proc/timer_list",
              "/proc/sched_debug", "/proc/latency_stats", "/sys/firmware"):
        assert p in (s.target for s in masks), p
    for p in ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"):
        assert p in (s.target for s in ro), p


def test_plan_etc_files_are_sorted_file_binds_after_base(tmp_path):
    steps = plan(etc_files=etc_files(tmp_path))
    etc = [s for s in steps if s.target.startswith("/etc/")]
    assert [s.target for s in etc] == ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]
    for s in etc:
        assert s.kind == "file" and s.flags == k.MS_BIND and not s.optional
        assert s.source == str(tmp_path / os.path.basename(s.target))
    assert steps.index(etc[0]) == 7


def test_plan_volumes_rw_ro_and_files(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("x")
    vols = [Volume(str(tmp_path / "d"), "/data"), Volume(str(tmp_path / "f"), "/cfg", True),
            Volume(str(tmp_path / "d"), "/ro", True)]
    steps = plan(volumes=vols, etc_files=etc_files(tmp_path))
    i = [s.target for s in steps].index("/data")
    got = [(s.target, s.source, s.flags, s.kind) for s in steps[i:i + 3]]
    bind = k.MS_BIND | k.MS_REC
    assert got == [("/data", str(tmp_path / "d"), bind, "dir"),
                   ("/cfg", str(tmp_path / "f"), bind | k.MS_RDONLY, "file"),
                   ("/ro", str(tmp_path / "d"), bind | k.MS_RDONLY, "dir")]
    assert not any(s.optional for s in steps[i:i + 3])
    # volumes come after the /etc files and before the masks (a volume cannot unmask)
    assert [s.target for s in steps[i - 1:i]] == ["/etc/resolv.conf"]
    assert steps[i + 3].kind == "mask"


def test_plan_tty_console_before_masks():
    steps = plan(tty_slave="/dev/pts/3")
    i = [s.target for s in steps].index("/dev/console")
    assert steps[i] == MountStep("/dev/console", source="/dev/pts/3", flags=k.MS_BIND, kind="file")
    assert steps[i + 1].kind == "mask"


# -- pivot_into ----------------------------------------------------------------

def test_pivot_into_exact_sequence(monkeypatch, tmp_path):
    fake = FakeKernel()
    monkeypatch.setattr(rootfs.os, "chdir", lambda p: fake.calls.append(("chdir", p)))
    pivot_into(str(tmp_path), fake)
    assert fake.calls == [("chdir", str(tmp_path)), ("pivot_root", ".", "."),
                          ("umount", ".", k.MNT_DETACH), ("chdir", "/")]


def test_pivot_into_stops_when_pivot_root_fails(monkeypatch, tmp_path):
    fake = FakeKernel(fail={"pivot_root": 22})
    monkeypatch.setattr(rootfs.os, "chdir", lambda p: fake.calls.append(("chdir", p)))
    with pytest.raises(MinirunError):
        pivot_into(str(tmp_path), fake)
    assert fake.ops() == ["chdir", "pivot_root"]  # no umount of the host's root


# -- RootFS.apply against a real tree ---------------------------------------------

def no_devices(steps):
    return [s for s in steps if s.kind != "devices"]  # mknod needs root


@pytest.fixture
def tree(tmp_path):
    """A small rootfs, a host directory and a host file outside it."""
    root = tmp_path / "rootfs"
    for d in ("proc", "dev", "sys", "etc", "tmp"):
        (root / d).mkdir(parents=True)
    for n in ETC:
        (root / "etc" / n).write_text("from the image\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("do not touch\n")
    host_etc = tmp_path / "host-etc"
    host_etc.mkdir()
    return root, outside, victim, etc_files(host_etc)


def apply(root, steps, **kw):
    fake = FakeKernel(**kw)
    fs = RootFS(str(root), fake)
    try:
        fs.apply(steps)
    finally:
        fs.close()
    return fake


def inside(root, path):
    return path == str(root) or path.startswith(str(root) + "/")


def snapshot(outside, victim):
    st = victim.stat()
    return sorted(os.listdir(outside)), victim.read_text(), st.st_ino, st.st_mtime_ns


def test_apply_ordinary_rootfs_mounts_only_inside(tree):
    root, outside, victim, etc = tree
    fake = apply(root, no_devices(plan(etc_files=etc)))
    mounts = fake.mounts()
    assert all(inside(root, m[2]) for m in mounts), mounts
    assert (root / "dev" / "pts").is_dir() and (root / "dev" / "shm").is_dir()
    first = [(m[2], m[3]) for m in mounts[:6]]
    assert first == [(f"{root}/proc", "proc"), (f"{root}/dev", "tmpfs"),
                     (f"{root}/dev/pts", "devpts"), (f"{root}/dev/shm", "tmpfs"),
                     (f"{root}/dev/mqueue", "mqueue"), (f"{root}/sys", "sysfs")]
    binds = [(m[1], m[2]) for m in mounts if m[3] is None and m[1] in etc.values()]
    assert binds == [(etc[f"/etc/{n}"], f"{root}/etc/{n}") for n in ETC]
    # fake mounts leave /proc empty: every mask and read-only path is skipped quietly
    assert len(mounts) == 9
    for call in fake.calls:
        if call[0] == "openat2":
            assert call[3] == k.RESOLVE_IN_ROOT | k.RESOLVE_NO_MAGICLINKS


def test_masks_and_readonly_paths(tree):
    root, *_ = tree
    (root / "proc" / "kcore").write_text("secret")
    (root / "proc" / "acpi").mkdir()
    (root / "proc" / "sys").mkdir()
    steps = [s for s in plan() if s.kind in ("mask", "readonly")]
    fake = apply(root, steps)
    m = [(c[1], c[2], c[3], c[4]) for c in fake.mounts()]
    assert m == [
        ("/dev/null", f"{root}/proc/kcore", None, k.MS_BIND),
        ("tmpfs", f"{root}/proc/acpi", "tmpfs", k.MS_RDONLY),
        (f"{root}/proc/sys", f"{root}/proc/sys", None, k.MS_BIND | k.MS_REC),
    ]
    # the bind of /proc/sys onto itself, then read-only with everything below it
    assert [c for c in fake.calls if c[0] == "mount_setattr"] == [
        ("mount_setattr", f"{root}/proc/sys", k.AT_EMPTY_PATH | k.AT_RECURSIVE, RO, 0)]


RO = k.MOUNT_ATTR_RDONLY | k.MOUNT_ATTR_NOSUID | k.MOUNT_ATTR_NODEV


def test_ro_volume_is_read_only_recursively(tree, tmp_path):
    root, *_ = tree
    src = tmp_path / "vol"
    src.mkdir()
    steps = [s for s in plan(volumes=[Volume(str(src), "/data", True)]) if s.target == "/data"]
    fake = apply(root, steps)
    ops = [c for c in fake.calls if c[0] != "openat2"]
    # a bind ignores MS_RDONLY: bind (recursively), then mount_setattr(AT_RECURSIVE)
    assert ops == [("mount", str(src), f"{root}/data", None, k.MS_BIND | k.MS_REC, None,
                    "/data"),
                   ("mount_setattr", f"{root}/data", k.AT_EMPTY_PATH | k.AT_RECURSIVE, RO, 0)]


def test_rw_volume_is_not_made_read_only(tree, tmp_path):
    root, *_ = tree
    src = tmp_path / "vol"
    src.mkdir()
    fake = apply(root, plan(volumes=[Volume(str(src), "/data")])[-1:])
    assert "mount_setattr" not in fake.ops()


def test_ro_volume_without_mount_setattr_remounts_every_submount(tree, tmp_path):
    # Kernels before 5.12: mount_setattr is ENOSYS; every mount below the volume that
    # mountinfo lists is remounted read-only by itself, keeping the flags it has.
    root, *_ = tree
    src = tmp_path / "vol"
    src.mkdir()
    # what the bind shows at /data (the fake does not mount)
    (root / "data" / "sub" / "deeper").mkdir(parents=True)
    (root / "data" / "with space").mkdir()
    data = f"{root}/data"
    table = [(1, 1, "/", "rw"), (20, 1, str(src), "rw,relatime"),
             (30, 1, data, "rw,relatime"),                       # the volume's bind
             (31, 30, f"{data}/sub", "rw,nosuid,noexec,noatime"),
             (32, 31, f"{data}/sub/deeper", "ro,nodev"),
             (33, 30, f"{data}/with space", "rw"),
             (34, 30, f"{data}/gone", "rw"),                     # hidden: no such path
             (40, 20, f"{src}/sub", "rw")]                        # the host's, not ours
    steps = [s for s in plan(volumes=[Volume(str(src), "/data", True)]) if s.target == "/data"]
    fake = apply(root, steps, mount_table=table, no_mount_setattr=True)
    remount = k.MS_BIND | k.MS_REMOUNT | k.MS_RDONLY | k.MS_NOSUID | k.MS_NODEV
    got = [(c[2], c[4]) for c in fake.mounts()][1:]
    assert got == [(data, remount | k.MS_RELATIME),
                   (f"{data}/sub", remount | k.MS_NOEXEC | k.MS_NOATIME),
                   (f"{data}/with space", remount),
                   (f"{data}/sub/deeper", remount)]  # parents before children
    assert [c[-1] for c in fake.mounts()][1:] == [
        "/data", f"{data}/sub", f"{data}/with space", f"{data}/sub/deeper"]
    # the submounts are opened without following any link
    walk = [c for c in fake.calls if c[0] == "openat2" and c[1].startswith(data)]
    assert walk and all(c[3] == k.RESOLVE_NO_SYMLINKS for c in walk)


def test_readonly_fallback_skips_a_covered_mount(tree, tmp_path):
    # Two mounts on one point: the covered one is unreachable, the top one is remounted.
    root, *_ = tree
    (root / "data" / "sub").mkdir(parents=True)
    data = f"{root}/data"
    table = [(30, 1, data, "rw"), (31, 30, f"{data}/sub", "rw"),
             (32, 31, f"{data}/sub", "rw")]
    fake = FakeKernel(mount_table=table, no_mount_setattr=True)
    fd = os.open(data, os.O_PATH)
    try:
        rootfs.make_readonly(fake, fd, "/data")
    finally:
        os.close(fd)
    assert [c[2] for c in fake.mounts()] == [data, f"{data}/sub"]


def test_mount_setattr_errors_other_than_enosys_are_reported(tree, tmp_path):
    root, *_ = tree
    src = tmp_path / "vol"
    src.mkdir()
    steps = [s for s in plan(volumes=[Volume(str(src), "/data", True)]) if s.target == "/data"]
    with pytest.raises(MinirunError, match="mount_setattr"):
        apply(root, steps, fail={"mount_setattr": 1})


def test_parse_mountinfo_and_mounts_below():
    text = ("1 0 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
            "2 1 0:5 / /a\\040b rw - tmpfs t rw\n"
            "3 2 0:6 / /a\\040b/c ro,nosuid - tmpfs t rw\n"
            "4 1 0:7 / /dev rw - tmpfs t rw\n"
            "5 4 0:8 / /dev/shm rw - tmpfs t rw\n"
            "6 1 0:9 / /devx rw - tmpfs t rw\n")
    table = rootfs.parse_mountinfo(text)
    assert table[1] == rootfs.MountEntry(2, 1, "/a b", "rw")
    assert [m.id for m in rootfs.mounts_below(table, 1)] == [2, 4, 6, 3, 5]
    assert [m.id for m in rootfs.mounts_below(table, 2)] == [3]
    # /dev is kept with what is below it
    assert [m.id for m in rootfs.mounts_below(table, 1, keep={4})] == [2, 6, 3]


def test_read_only_root_is_the_root_mount_with_its_flags_kept(tmp_path):
    # --read-only (root.readonly): the root mount only, adding RDONLY|NODEV to what it
    # has; without mount_setattr, a bind remount that repeats the flags it had.
    table = [(1, 1, "/", "rw,nosuid"), (2, 1, "/proc", "rw")]
    fake = FakeKernel(mount_table=table)
    rootfs.make_mount_readonly(fake, "/")
    attrs = k.MOUNT_ATTR_RDONLY | k.MOUNT_ATTR_NODEV
    assert [c for c in fake.calls if c[0] == "mount_setattr"] == [
        ("mount_setattr", "/", k.AT_EMPTY_PATH, attrs, 0)]
    fake = FakeKernel(mount_table=table, no_mount_setattr=True)
    rootfs.make_mount_readonly(fake, "/")
    assert [(c[2], c[4]) for c in fake.mounts()] == [
        ("/", k.MS_BIND | k.MS_REMOUNT | k.MS_RDONLY | k.MS_NODEV | k.MS_NOSUID)]


HOSTILE = {
    # name: (path in rootfs, link target; "{o}" is the host directory, "{v}" the host file)
    "etc-abs": ("etc", "{o}"),
    "etc-rel": ("etc", "../../../../../../../..{o}"),
    "proc-abs": ("proc", "{o}"),
    "proc-rel": ("proc", "../../../../../../../..{o}"),
    "sys-abs": ("sys", "{o}"),
    "dev-rel": ("dev", "../../../../../../../..{o}"),
    "resolv-abs": ("etc/resolv.conf", "{v}"),
    "resolv-rel": ("etc/resolv.conf", "../../../../../../../..{v}"),
    "hosts-abs": ("etc/hosts", "{v}"),
    "hostname-rel": ("etc/hostname", "../../victim"),  # one level out of the rootfs, on the host
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_symlinks_never_reach_the_host(tree, case):
    root, outside, victim, etc = tree
    path, target = HOSTILE[case]
    p = root / path
    if p.is_dir():
        shutil.rmtree(p)
    else:
        p.unlink()
    os.symlink(target.format(o=outside, v=victim), p)
    before = snapshot(outside, victim)
    fake = FakeKernel()
    fs = RootFS(str(root), fake)
    try:
        fs.apply(no_devices(plan(etc_files=etc)))
    except MinirunError as e:
        assert "\n" not in str(e)
    finally:
        fs.close()
    assert snapshot(outside, victim) == before
    for m in fake.mounts():
        assert inside(root, m[2]), m
        assert not str(m[2]).startswith(str(outside)) and m[2] != str(victim)


def test_symlink_resolving_inside_the_root_is_followed_inside(tree):
    root, outside, victim, etc = tree
    (root / "real-etc").mkdir()
    os.rename(root / "etc", root / "real-etc" / "etc")
    os.symlink("/real-etc/etc", root / "etc")
    fake = apply(root, no_devices(plan(etc_files=etc)))
    binds = [m[2] for m in fake.mounts() if m[1] in etc.values()]
    assert binds == [f"{root}/real-etc/etc/{n}" for n in ETC]


@pytest.mark.parametrize("where,make", [
    ("proc", lambda p: p.write_text("not a dir")),
    ("dev", lambda p: os.mkfifo(p)),
    ("sys", lambda p: p.write_text("")),
])
def test_mount_on_non_directory_is_refused(tree, where, make):
    root, *_ = tree
    (root / where).rmdir()
    make(root / where)
    fake = FakeKernel()
    fs = RootFS(str(root), fake)
    with pytest.raises(MinirunError, match=f"refusing to mount on /{where}"):
        fs.apply(no_devices(plan()))
    fs.close()
    assert all(m[2] != str(root / where) for m in fake.mounts())


def test_file_bind_on_directory_or_fifo_is_refused(tree):
    root, outside, victim, etc = tree
    (root / "etc" / "hosts").unlink()
    (root / "etc" / "hosts").mkdir()
    with pytest.raises(MinirunError, match="refusing to mount on /etc/hosts"):
        apply(root, no_devices(plan(etc_files=etc)))
    (root / "etc" / "hosts").rmdir()
    os.mkfifo(root / "etc" / "hosts")
    with pytest.raises(MinirunError, match="refusing to mount on /etc/hosts"):
        apply(root, no_devices(plan(etc_files=etc)))


def test_missing_mount_points_are_created_inside(tree, tmp_path):
    root, outside, victim, etc = tree
    for n in ETC:
        (root / "etc" / n).unlink()
    (root / "etc").rmdir()
    src = tmp_path / "src"
    src.mkdir()
    fake = apply(root, no_devices(plan(etc_files=etc,
                                       volumes=[Volume(str(src), "/srv/a/b")])))
    assert all(stat.S_ISREG((root / "etc" / n).stat().st_mode) for n in ETC)
    assert (root / "srv" / "a" / "b").is_dir()
    assert fake.mounts()[-1][2] == f"{root}/srv/a/b"


@pytest.mark.parametrize("target", ["{o}", "../../../../../..{o}"])
def test_volume_target_symlink_does_not_escape(tree, tmp_path, target):
    root, outside, victim, etc = tree
    src = tmp_path / "src"
    src.mkdir()
    os.symlink(target.format(o=outside), root / "data")
    fake = FakeKernel()
    fs = RootFS(str(root), fake)
    try:
        fs.apply(no_devices(plan(volumes=[Volume(str(src), "/data"),
                                          Volume(str(src), "/data/sub")])))
    except MinirunError:
        pass
    fs.close()
    assert os.listdir(outside) == []
    assert all(inside(root, m[2]) for m in fake.mounts())


@pytest.mark.parametrize("where,link", [("proc", "/"), ("dev", "../.."), ("sys", "/etc/..")])
def test_mount_point_that_is_the_root_itself_is_refused(tree, where, link):
    # Mounting over the root would hide the whole rootfs and every later step with it.
    root, *_ = tree
    (root / where).rmdir()
    os.symlink(link, root / where)
    fake = FakeKernel()
    fs = RootFS(str(root), fake)
    with pytest.raises(MinirunError, match=f"refusing to mount on /{where}: it resolves to the root"):
        fs.apply(no_devices(plan()))
    fs.close()
    assert all(m[2] != str(root) for m in fake.mounts())
