"""The container's file system: a mount plan (pure) and the code that applies it.

`plan()` turns a spec into an ordered list of MountSteps relative to the new
root; unit tests check it without root. `apply()` carries it out inside the
container's mount namespace, before pivot_root. Every target is opened with
openat2(RESOLVE_IN_ROOT), so a hostile rootfs whose /proc, /dev or /etc is a
symlink (absolute or ../) cannot make minirun mount or write outside the root
(the runc CVE-2019-16884 / CVE-2021-30465 lessons); the mount then goes onto
/proc/self/fd/N, the object we checked, not onto a path that could change.
"""
from __future__ import annotations

import os
import stat
from typing import NamedTuple

from . import kernel as k
from .errors import MinirunError, SyscallError

NOSUID_NODEV_NOEXEC = k.MS_NOSUID | k.MS_NODEV | k.MS_NOEXEC

DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
           ("urandom", 1, 9), ("tty", 5, 0))
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
             ("ptmx", "pts/ptmx"), ("core", "/proc/kcore"))
MASKED_FILES = ("/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug")
MASKED_DIRS = ("/proc/acpi", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


class MountStep(NamedTuple):
    """One mount inside the new root. `kind` says how the target is prepared."""
    target: str                   # absolute path inside the container
    fstype: str | None = None
    source: str | None = None     # host path for binds
    flags: int = 0
    data: str | None = None
    kind: str = "dir"             # dir | file (bind of a file) | mask | readonly | devices
    optional: bool = False        # skip quietly when the target does not exist (masks)


def plan(*, volumes=(), etc_files: dict[str, str] | None = None,
         tty_slave: str | None = None) -> list[MountStep]:
    """The mounts of a container, in order. `etc_files` maps /etc paths to host files."""
    steps = [
        MountStep("/proc", "proc", "proc", NOSUID_NODEV_NOEXEC),
        MountStep("/dev", "tmpfs", "tmpfs", k.MS_NOSUID, "mode=755,size=65536k"),
        MountStep("/dev", kind="devices"),
        MountStep("/dev/pts", "devpts", "devpts", k.MS_NOSUID | k.MS_NOEXEC,
                  "newinstance,ptmxmode=0666,mode=0620,gid=5"),
        MountStep("/dev/shm", "tmpfs", "shm", NOSUID_NODEV_NOEXEC, "mode=1777,size=65536k"),
        MountStep("/dev/mqueue", "mqueue", "mqueue", NOSUID_NODEV_NOEXEC),
        MountStep("/sys", "sysfs", "sysfs", NOSUID_NODEV_NOEXEC | k.MS_RDONLY),
    ]
    for name, src in sorted((etc_files or {}).items()):
        steps.append(MountStep(name, source=src, flags=k.MS_BIND, kind="file"))
    for v in volumes:
        kind = "dir" if os.path.isdir(v.source) else "file"
        steps.append(MountStep(v.target, source=v.source, flags=k.MS_BIND | k.MS_REC, kind=kind))
        if v.readonly:
            steps.append(MountStep(v.target, kind="readonly"))
    if tty_slave:
        steps.append(MountStep("/dev/console", source=tty_slave, flags=k.MS_BIND, kind="file"))
    steps += [MountStep(p, kind="mask", optional=True) for p in MASKED_FILES + MASKED_DIRS]
    steps += [MountStep(p, kind="readonly", optional=True) for p in READONLY_PATHS]
    return steps


class RootFS:
    """Applies a plan below `root` (a directory already mounted, e.g. the overlay)."""

    def __init__(self, root: str, kern=k.kernel):
        self.root = root
        self.k = kern
        self.rootfd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    # -- safe path handling ------------------------------------------------
    def open_in_root(self, path: str, flags: int = os.O_PATH) -> int:
        return self.k.openat2(self.rootfd, path.lstrip("/") or ".", flags,
                              k.RESOLVE_IN_ROOT | k.RESOLVE_NO_MAGICLINKS)

    def ensure(self, path: str, kind: str) -> int:
        """Create `path` (a directory, or an empty file for file binds) inside the root
        without following any link out of it, and return an O_PATH fd of it."""
        parts = [p for p in path.split("/") if p]
        for i in range(len(parts)):
            sub = "/".join(parts[: i + 1])
            last = i == len(parts) - 1
            try:
                fd = self.open_in_root(sub)
            except SyscallError as e:
                if e.errno != 2:  # ENOENT
                    raise
                parent = self.open_in_root("/".join(parts[:i]) or ".", os.O_PATH | os.O_DIRECTORY)
                try:
                    if last and kind == "file":
                        os.close(os.open(parts[i], os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW
                                         | os.O_CLOEXEC, 0o644, dir_fd=parent))
                    else:
                        os.mkdir(parts[i], 0o755, dir_fd=parent)
                except FileExistsError:
                    pass
                except OSError as e2:
                    raise SyscallError.from_oserror("create mount point", path, e2) from None
                finally:
                    os.close(parent)
                fd = self.open_in_root(sub)
            if not last:
                os.close(fd)
        return fd

    def _target_fd(self, step: MountStep) -> int | None:
        try:
            if step.optional:
                fd = self.open_in_root(step.target)
            else:
                fd = self.ensure(step.target, "file" if step.kind == "file" else "dir")
        except SyscallError as e:
            if step.optional and e.errno == 2:
                return None
            raise
        st, root_st = os.fstat(fd), os.fstat(self.rootfd)
        if (st.st_dev, st.st_ino) == (root_st.st_dev, root_st.st_ino):
            # A link such as /proc -> / (or /dev -> ../..) resolves to the root itself.
            # Mounting there stacks proc/tmpfs/sysfs over the whole rootfs; later steps,
            # which resolve from self.rootfd below that mount, then land in the hidden
            # layer, so the masks and read-only paths were silently skipped and the
            # container's / was a writable, unmasked procfs. Refuse it.
            os.close(fd)
            raise MinirunError(f"refusing to mount on {step.target}: it resolves to the "
                               "root of the rootfs")
        mode = st.st_mode
        is_file = stat.S_ISREG(mode) or stat.S_ISCHR(mode)
        if step.kind in ("mask", "readonly"):
            ok, what = is_file or stat.S_ISDIR(mode), "file or directory"
        elif step.kind == "file":
            ok, what = is_file, "file"
        else:
            ok, what = stat.S_ISDIR(mode), "directory"
        if not ok:
            os.close(fd)
            raise MinirunError(f"refusing to mount on {step.target}: not an ordinary {what} "
                               "in the rootfs")
        return fd

    def apply(self, steps: list[MountStep]) -> None:
        for step in steps:
            if step.kind == "devices":
                self._populate_dev()
                continue
            fd = self._target_fd(step)
            if fd is None:
                continue
            where = f"/proc/self/fd/{fd}"
            try:
                if step.kind == "mask":
                    if stat.S_ISDIR(os.fstat(fd).st_mode):
                        self.k.mount("tmpfs", where, "tmpfs", k.MS_RDONLY, None,
                                     display=step.target)
                    else:
                        self.k.mount("/dev/null", where, None, k.MS_BIND, display=step.target)
                elif step.kind == "readonly":
                    self.k.mount(where, where, None, k.MS_BIND | k.MS_REC, display=step.target)
                    self._remount_ro(step.target)
                else:
                    self.k.mount(step.source, where, step.fstype, step.flags, step.data,
                                 display=step.target)
                    if step.flags & k.MS_BIND and step.flags & k.MS_RDONLY:
                        self._remount_ro(step.target)
            finally:
                os.close(fd)

    def _remount_ro(self, target: str) -> None:
        fd = self.open_in_root(target)
        try:
            where = f"/proc/self/fd/{fd}"
            flags = k.MS_BIND | k.MS_REMOUNT | k.MS_RDONLY
            try:
                self.k.mount(None, where, None, flags | k.MS_NOSUID | k.MS_NODEV,
                             display=target)
            except SyscallError:
                # A mount with fewer flags (e.g. without nodev) must be remounted with them.
                self.k.mount(None, where, None, flags, display=target)
        finally:
            os.close(fd)

    def _populate_dev(self) -> None:
        devfd = self.open_in_root("/dev", os.O_PATH | os.O_DIRECTORY)
        dirfd = os.open(f"/proc/self/fd/{devfd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        os.close(devfd)
        try:
            old = os.umask(0)
            try:
                for name, major, minor in DEVICES:
                    os.mknod(name, 0o666 | stat.S_IFCHR, os.makedev(major, minor), dir_fd=dirfd)
                for name, target in DEV_LINKS:
                    os.symlink(target, name, dir_fd=dirfd)
                for d in ("pts", "shm", "mqueue"):
                    os.mkdir(d, 0o755, dir_fd=dirfd)
            finally:
                os.umask(old)
        except OSError as e:
            raise SyscallError.from_oserror("populate", "/dev", e) from None
        finally:
            os.close(dirfd)

    def close(self) -> None:
        os.close(self.rootfd)


def pivot_into(root: str, kern=k.kernel) -> None:
    """Make `root` the root of this mount namespace and drop every trace of the old one.

    pivot_root(".", ".") stacks the old root on top of the new one at "/"; the
    lazy unmount then detaches it, so no path leads back to the host's files
    (chroot would leave them reachable through a second chroot).
    """
    os.chdir(root)
    kern.pivot_root(".", ".")
    kern.umount(".", k.MNT_DETACH)
    os.chdir("/")
