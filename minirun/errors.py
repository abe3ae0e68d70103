"""The error tree. Only the CLI turns these into exit codes and one-line messages.

Every error names the operation and the object it failed on, so that the one
line a user sees is enough to understand what went wrong.
"""
from __future__ import annotations

import errno as _errno
import os


class MinirunError(Exception):
    """A failure of minirun itself (bad input, a kernel refusal): exit 125."""

    exit_code = 125


class UsageError(MinirunError):
    """Bad user input detected before anything was created."""


class NotFound(MinirunError):
    """A named container or network does not exist."""


class Conflict(MinirunError):
    """A name, address, port or subnet is already taken."""


class CommandNotFound(MinirunError):
    """The container's command does not exist inside the rootfs: exit 127."""

    exit_code = 127


class CommandNotExecutable(MinirunError):
    """The container's command exists but cannot be executed: exit 126."""

    exit_code = 126


class SyscallError(MinirunError):
    """A system call or kernel operation failed: says which, on what, and why."""

    def __init__(self, op: str, target: str | None, err: int, detail: str | None = None):
        self.op, self.target, self.errno = op, target, err
        what = f"{op} {target}" if target else op
        why = detail or (os.strerror(err) if err else "failed")
        super().__init__(f"{what}: {why}")

    @classmethod
    def from_oserror(cls, op: str, target: str | None, exc: OSError) -> "SyscallError":
        return cls(op, target, exc.errno or _errno.EIO)


class TeardownError(MinirunError):
    """Teardown kept going past failures; this carries all of them."""

    def __init__(self, failures: list[str]):
        self.failures = failures
        super().__init__("teardown incomplete: " + "; ".join(failures))
