"""openat2's EAGAIN: a RESOLVE_IN_ROOT lookup through ".." that raced a mount or rename
anywhere in the system is retried, as openat2(2) says; any other error is raised at once.
(The race itself is not reproducible on demand: the C library call is replaced.)"""
import ctypes
import errno

import pytest

from minirun import kernel as k
from minirun.errors import SyscallError


class FlakyLibc:
    """syscall() fails with the given errnos in turn, then opens /dev/null."""
    def __init__(self, errnos, real):
        self.errnos, self.real, self.calls = list(errnos), real, 0

    def syscall(self, nr, *args):
        self.calls += 1
        if self.errnos:
            ctypes.set_errno(self.errnos.pop(0))
            return -1
        return self.real.syscall(nr, *args)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_eagain_is_retried(monkeypatch):
    fake = FlakyLibc([errno.EAGAIN, errno.EAGAIN], k._libc)
    monkeypatch.setattr(k, "_libc", fake)
    root = k.os.open("/", k.os.O_PATH)
    try:
        k.os.close(k.kernel.openat2(root, "dev/null", 0, k.RESOLVE_IN_ROOT))
    finally:
        k.os.close(root)
    assert fake.calls == 3


def test_other_errors_and_endless_eagain_are_raised(monkeypatch):
    fake = FlakyLibc([errno.ENOENT], k._libc)
    monkeypatch.setattr(k, "_libc", fake)
    with pytest.raises(SyscallError) as e:
        k.kernel.openat2(k.AT_FDCWD, "/dev/null", 0, k.RESOLVE_IN_ROOT)
    assert e.value.errno == errno.ENOENT and fake.calls == 1
    fake = FlakyLibc([errno.EAGAIN] * k._OPENAT2_TRIES, k._libc)
    monkeypatch.setattr(k, "_libc", fake)
    with pytest.raises(SyscallError) as e:
        k.kernel.openat2(k.AT_FDCWD, "/dev/null", 0, k.RESOLVE_IN_ROOT)
    assert e.value.errno == errno.EAGAIN and fake.calls == k._OPENAT2_TRIES
