"""Naming a container's network namespace so `ip netns` sees it, as iproute2 does.

`ip netns` lists the files in /run/netns; each is a bind mount of a
/proc/PID/ns/net file, which keeps the namespace alive and lets `ip netns exec`
enter it. Unlike `ip netns add`, minirun does not turn /run/netns itself into a
shared mount point: it needs no propagation, and so leaves no extra mount.
"""
from __future__ import annotations

import errno
import os

from ..errors import SyscallError
from .. import kernel as k
from .. import oplog

NETNS_DIR = "/run/netns"


def _ensure_dir() -> None:
    os.makedirs(NETNS_DIR, mode=0o755, exist_ok=True)


def path(name: str) -> str:
    return os.path.join(NETNS_DIR, name)


def attach(name: str, pid: int) -> str:
    """Bind-mount /proc/PID/ns/net at /run/netns/NAME (`ip netns attach NAME PID`)."""
    oplog.record(f"ip netns attach {name} {pid}")
    _ensure_dir()
    target = path(name)
    fd = os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0)
    os.close(fd)
    try:
        k.kernel.mount(f"/proc/{pid}/ns/net", target, None, k.MS_BIND)
    except SyscallError:
        os.unlink(target)
        raise
    return target


def detach(name: str) -> None:
    """Undo attach (`ip netns delete NAME`); fine if it is already gone."""
    target = path(name)
    if not os.path.lexists(target):
        return
    oplog.record(f"ip netns delete {name}")
    try:
        k.kernel.umount(target, k.MNT_DETACH)
    except SyscallError as e:
        if e.errno not in (errno.EINVAL, errno.ENOENT):
            raise
    try:
        os.unlink(target)
    except FileNotFoundError:
        pass
