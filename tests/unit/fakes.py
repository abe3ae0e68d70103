"""A recording fake of `minirun.kernel.LinuxKernel` for unit tests (no root needed).

Every call is appended to `calls` as a tuple, in order. Mounts are recorded with
the path the target really names: a `/proc/self/fd/N` target is read back with
readlink at call time, so a test can check that the object minirun checked (and
not some other path) is what it would mount on.

`openat2` goes to the real system call by default (it needs no privilege), so the
path-safety logic of rootfs.py runs against a real directory tree; nothing that
needs root (mount, umount, pivot_root, unshare...) reaches the kernel.
`fail` makes chosen operations raise SyscallError: {("mount", flags): errno} or
{"pivot_root": errno}, checked in that order.

`mount_table` stands for /proc/self/mountinfo: (id, parent id, mount point, options)
tuples; `mount_id(fd)` answers with the last entry mounted on the path the fd names.
`no_mount_setattr` plays a kernel before 5.12 (every mount_setattr: ENOSYS).
"""
from __future__ import annotations

import errno
import os

from minirun import kernel as k
from minirun.errors import SyscallError


def resolved(path: str | None) -> str | None:
    """What a /proc/self/fd/N path stands for at this moment (else the path itself)."""
    if path and path.startswith("/proc/self/fd/"):
        try:
            return os.readlink(path)
        except OSError:
            return path
    return path


class FakeKernel:
    def __init__(self, *, real_openat2: bool = True, fail: dict | None = None,
                 mount_table=(), no_mount_setattr: bool = False):
        self.calls: list[tuple] = []
        self.real_openat2 = real_openat2
        self.fail = dict(fail or {})
        self.mount_table = list(mount_table)
        self.no_mount_setattr = no_mount_setattr

    # -- helpers for assertions ---------------------------------------------
    def ops(self) -> list[str]:
        return [c[0] for c in self.calls]

    def mounts(self) -> list[tuple]:
        return [c for c in self.calls if c[0] == "mount"]

    def _maybe_fail(self, *keys) -> None:
        for key in keys:
            if key in self.fail:
                err = self.fail.pop(key)
                raise SyscallError(keys[0] if isinstance(keys[0], str) else keys[0][0],
                                   None, err)

    # -- the kernel interface ---------------------------------------------
    def mount(self, source, target, fstype, flags=0, data=None, *, display=None):
        self.calls.append(("mount", resolved(source), resolved(target), fstype, flags, data,
                           display))
        self._maybe_fail(("mount", flags), "mount")

    def umount(self, target, flags=0):
        self.calls.append(("umount", target, flags))
        self._maybe_fail("umount")

    def mount_setattr(self, dirfd, path, flags, attr_set, attr_clr=0, *, display=None):
        target = resolved(f"/proc/self/fd/{dirfd}") if path == "" else path
        self.calls.append(("mount_setattr", target, flags, attr_set, attr_clr))
        if self.no_mount_setattr:
            raise SyscallError("mount_setattr", display, errno.ENOSYS)
        self._maybe_fail(("mount_setattr", flags), "mount_setattr")

    def mountinfo(self):
        return "".join(f"{i} {parent} 0:{i} / {point.replace(' ', chr(92) + '040')} {opts} "
                       "- fake fake rw\n" for i, parent, point, opts in self.mount_table)

    def mount_id(self, fd):
        path = resolved(f"/proc/self/fd/{fd}")
        ids = [i for i, _, point, _ in self.mount_table if point == path]
        if not ids:
            raise SyscallError("mount_id", path, errno.ENOENT)
        return ids[-1]

    def pivot_root(self, new_root, put_old):
        self.calls.append(("pivot_root", new_root, put_old))
        self._maybe_fail("pivot_root")

    def openat2(self, dirfd, path, flags, resolve, mode=0):
        self.calls.append(("openat2", path, flags, resolve))
        self._maybe_fail("openat2")
        if not self.real_openat2:
            raise SyscallError("open", path, 2)
        return k.kernel.openat2(dirfd, path, flags, resolve, mode)

    def unshare(self, flags):
        self.calls.append(("unshare", flags))

    def setns(self, fd, nstype=0, what="namespace"):
        self.calls.append(("setns", nstype, what))

    def sethostname(self, name):
        self.calls.append(("sethostname", name))

    def cloexec_from(self, lowfd):
        self.calls.append(("cloexec_from", lowfd))

    def set_dumpable(self, on):
        self.calls.append(("set_dumpable", on))
