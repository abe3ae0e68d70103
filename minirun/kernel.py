"""The kernel layer: every system call minirun makes that Python does not wrap.

One small interface (`Kernel`) with a real implementation (`LinuxKernel`, via
ctypes) and a recording fake for unit tests (`tests/unit/fakes.py`), so the
exact sequence of mounts and namespace changes can be checked without root.
`os.unshare`/`os.setns` are used where the running Python has them (3.12+).
"""
from __future__ import annotations

import ctypes
import errno
import os

from .errors import SyscallError

# Namespace flags (linux/sched.h)
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWCGROUP = 0x02000000

NS_FLAGS = {"ipc": CLONE_NEWIPC, "uts": CLONE_NEWUTS, "net": CLONE_NEWNET,
            "pid": CLONE_NEWPID, "mnt": CLONE_NEWNS}

# Mount flags (linux/mount.h)
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_SHARED_REC = MS_SHARED | MS_REC
MNT_DETACH = 2
MS_NODIRATIME = 2048
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24

# mount_setattr (linux/mount.h, linux/fcntl.h): change a mount's flags, with
# AT_RECURSIVE the flags of every mount below it too.
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_SYMLINK_NOFOLLOW = 0x100
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8

# openat2 resolve flags (linux/openat2.h)
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_IN_ROOT = 0x10

# x86_64 and aarch64 share these numbers (the "generic" syscall table)
SYS_pivot_root = {"x86_64": 155, "aarch64": 41}
SYS_openat2 = 437
_OPENAT2_TRIES = 64  # EAGAIN: a mount or rename raced a ".." lookup (openat2(2))
SYS_close_range = 436
SYS_pidfd_open = 434
SYS_mount_setattr = 442
CLOSE_RANGE_CLOEXEC = 1 << 2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

# The interpreter is linked against libc: no find_library(), which runs ldconfig.
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.syscall.restype = ctypes.c_long
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong]


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


class _SockFprog(ctypes.Structure):  # struct sock_fprog (linux/filter.h)
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _b(s: str | bytes | None) -> bytes | None:
    return s.encode() if isinstance(s, str) else s


def _check(ret: int, op: str, target: str | None) -> int:
    if ret < 0:
        raise SyscallError(op, target, ctypes.get_errno())
    return ret


class LinuxKernel:
    """The real thing. Methods raise SyscallError naming the operation and its object."""

    def unshare(self, flags: int) -> None:
        if hasattr(os, "unshare"):
            try:
                os.unshare(flags)
            except OSError as e:
                raise SyscallError.from_oserror("unshare", None, e) from None
        else:
            _check(_libc.unshare(ctypes.c_int(flags)), "unshare", None)

    def setns(self, fd: int, nstype: int = 0, what: str = "namespace") -> None:
        if hasattr(os, "setns"):
            try:
                os.setns(fd, nstype)
            except OSError as e:
                raise SyscallError.from_oserror("setns", what, e) from None
        else:
            _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns", what)

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int = 0,
              data: str | None = None, *, display: str | None = None) -> None:
        ret = _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data))
        _check(ret, f"mount {fstype or source or ''}".rstrip() + " on", display or target)

    def umount(self, target: str, flags: int = 0) -> None:
        _check(_libc.umount2(_b(target), flags), "umount", target)

    def mount_setattr(self, dirfd: int, path: str, flags: int, attr_set: int,
                      attr_clr: int = 0, *, display: str | None = None) -> None:
        """Set/clear MOUNT_ATTR_* on the mount at dirfd/path (path "" with AT_EMPTY_PATH:
        the mount of dirfd itself); AT_RECURSIVE: on every mount below it as well.
        Kernels before 5.12 raise SyscallError with errno ENOSYS."""
        attr = _MountAttr(attr_set, attr_clr, 0, 0)
        ret = _libc.syscall(ctypes.c_long(SYS_mount_setattr), ctypes.c_int(dirfd), _b(path),
                            ctypes.c_uint(flags), ctypes.byref(attr),
                            ctypes.c_size_t(ctypes.sizeof(attr)))
        _check(ret, "mount_setattr", display or path)

    def mountinfo(self) -> str:
        """This process's mount table (/proc/self/mountinfo), paths relative to its root."""
        try:
            with open("/proc/self/mountinfo", errors="surrogateescape") as f:
                return f.read()
        except OSError as e:
            raise SyscallError.from_oserror("read", "/proc/self/mountinfo", e) from None

    def mount_id(self, fd: int) -> int:
        """The id (mountinfo's first field) of the mount `fd` is on."""
        try:
            with open(f"/proc/self/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("mnt_id:"):
                        return int(line.split()[1])
        except OSError as e:
            raise SyscallError.from_oserror("read", f"/proc/self/fdinfo/{fd}", e) from None
        raise SyscallError("read", f"/proc/self/fdinfo/{fd}", errno.ENOTSUP, "no mnt_id")

    def pivot_root(self, new_root: str, put_old: str) -> None:
        nr = SYS_pivot_root.get(os.uname().machine, 155)
        _check(_libc.syscall(ctypes.c_long(nr), _b(new_root), _b(put_old)), "pivot_root",
               new_root)

    def sethostname(self, name: str) -> None:
        raw = name.encode()
        _check(_libc.sethostname(raw, ctypes.c_size_t(len(raw))), "sethostname", name)

    def openat2(self, dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
        """Open `path` below `dirfd`; with RESOLVE_IN_ROOT symlinks cannot climb out of it.
        A lookup through ".." fails with EAGAIN when any mount or rename happened in the
        system meanwhile (the kernel cannot prove it stayed inside): openat2(2) says to
        retry, and so we do (a start's network attach mounts a netns name beside it)."""
        how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
        for _ in range(_OPENAT2_TRIES):
            fd = _libc.syscall(ctypes.c_long(SYS_openat2), ctypes.c_int(dirfd), _b(path),
                               ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
            if fd >= 0:
                return fd
            err = ctypes.get_errno()
            if err != errno.EAGAIN:
                break
        raise SyscallError("open", path, err)

    def cloexec_from(self, lowfd: int) -> None:
        """Mark every fd >= lowfd close-on-exec, so no host fd reaches the container."""
        ret = _libc.syscall(ctypes.c_long(SYS_close_range), ctypes.c_uint(lowfd),
                            ctypes.c_uint(0xFFFFFFFF), ctypes.c_uint(CLOSE_RANGE_CLOEXEC))
        if ret < 0:  # kernels before 5.11: do it by hand
            for name in os.listdir("/proc/self/fd"):
                fd = int(name)
                if fd >= lowfd:
                    try:
                        os.set_inheritable(fd, False)
                    except OSError:
                        pass

    def prctl(self, option: int, arg: int = 0) -> None:
        _check(_libc.prctl(option, arg, 0, 0, 0), "prctl", str(option))

    def seccomp_load_bpf(self, prog: bytes) -> None:
        """Install a seccomp filter: `prog` is a classic BPF program (struct sock_filter
        array, as libseccomp's seccomp_export_bpf writes it). Needs no_new_privs or
        CAP_SYS_ADMIN; inherited across fork and execve, never removed."""
        if not prog or len(prog) % 8 or len(prog) > 4096 * 8:
            raise SyscallError("seccomp", "filter", errno.EINVAL, "not a BPF program")
        buf = ctypes.create_string_buffer(prog, len(prog))
        fprog = _SockFprog(len(prog) // 8, ctypes.addressof(buf))
        _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0),
               "seccomp", "filter")

    def set_child_subreaper(self) -> None:
        """Orphaned descendants (the container's PID 1) are re-parented to us, not to init."""
        self.prctl(PR_SET_CHILD_SUBREAPER, 1)

    def set_parent_death_signal(self, sig: int) -> None:
        self.prctl(PR_SET_PDEATHSIG, sig)

    def set_dumpable(self, on: bool) -> None:
        self.prctl(PR_SET_DUMPABLE, 1 if on else 0)

    def pidfd_open(self, pid: int) -> int:
        if hasattr(os, "pidfd_open"):
            try:
                return os.pidfd_open(pid)
            except OSError as e:
                raise SyscallError.from_oserror("pidfd_open", str(pid), e) from None
        fd = _libc.syscall(ctypes.c_long(SYS_pidfd_open), ctypes.c_int(pid), ctypes.c_uint(0))
        if fd < 0:
            raise SyscallError("pidfd_open", str(pid), ctypes.get_errno())
        return fd


kernel = LinuxKernel()


def errno_name(err: int) -> str:
    return errno.errorcode.get(err, str(err))
