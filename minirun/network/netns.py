"""Naming a container's network namespace so `ip netns` sees it, as iproute2 does.

`ip netns` lists the files in /run/netns; each is a bind mount of a
/proc/PID/ns/net file, which keeps the namespace alive and lets `ip netns exec`
enter it. Unlike `ip netns add`, minirun does not turn /run/netns itself into a
shared mount point: it needs no propagation, and so leaves no extra mount.

Ownership: /run/netns is host-wide, and an administrator's `ip netns add web`
must survive `minirun run --name web`. The file is created with O_EXCL (an
existing name is refused, never reused) and tagged with an extended attribute
naming the state root and the container (`trusted.minirun`); the bind mount
is proven ours by the namespace's own inode, recorded before the mount. Undo
unmounts only a mount of that namespace and unlinks only a file carrying our
tag.
"""
from __future__ import annotations

import errno
import os

from .. import kernel as k
from .. import oplog
from ..errors import Conflict, SyscallError

NETNS_DIR = "/run/netns"
XATTR = "trusted.minirun"


def path(name: str) -> str:
    return os.path.join(NETNS_DIR, name)


def identity(pid: int) -> list[int]:
    """(device, inode) of a process's network namespace: the token of its bind mount."""
    st = os.stat(f"/proc/{pid}/ns/net")
    return [st.st_dev, st.st_ino]


def check_free(name: str) -> None:
    if os.path.lexists(path(name)):
        raise Conflict(f"a network namespace named {name!r} already exists ({path(name)}): "
                       "choose another --name")


def attach(name: str, pid: int, tag: str) -> None:
    """Bind-mount /proc/PID/ns/net at /run/netns/NAME (`ip netns attach NAME PID`)."""
    oplog.record(f"ip netns attach {name} {oplog.pid_text(pid)}",
                 why=f"name the network namespace of the container's PID 1 (PID "
                 f"{oplog.pid_text(pid)}): `ip netns` lists it, `ip -n {name}` works in it")
    if oplog.skip():
        return
    os.makedirs(NETNS_DIR, mode=0o755, exist_ok=True)
    target = path(name)
    try:
        fd = os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0)
    except FileExistsError:
        raise Conflict(f"a network namespace named {name!r} already exists "
                       f"({target}): choose another --name") from None
    try:
        os.setxattr(fd, XATTR, tag.encode())
    except OSError as e:
        if e.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            os.close(fd)
            os.unlink(target)
            raise SyscallError.from_oserror("tag", target, e) from None
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    try:
        k.kernel.mount(f"/proc/{pid}/ns/net", target, None, k.MS_BIND)
    except SyscallError:
        os.unlink(target)  # the file we just made with O_EXCL and tagged: ours
        raise


def _tag_of(target: str) -> str | None:
    try:
        return os.getxattr(target, XATTR, follow_symlinks=False).decode()
    except OSError:
        return None


def detach(name: str, tag: str, ns: list[int] | None) -> str | None:
    """Undo attach if (and only as far as) it is provably ours (`ip netns delete NAME`).
    Returns None, or why something of that name was left alone."""
    target = path(name)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return None
    parent = os.stat(NETNS_DIR)
    if st.st_dev != parent.st_dev:  # a mount point: whose namespace is it?
        if ns is None or [st.st_dev, st.st_ino] != list(ns):
            return f"{target} is a mount of another network namespace"
        oplog.record(f"ip netns delete {name}", why="the name goes; the namespace dies with "
                     "its last process, taking the container's end of the veth with it")
        if oplog.skip():
            return None
        try:
            k.kernel.umount(target, k.MNT_DETACH)
        except SyscallError as e:
            if e.errno not in (errno.EINVAL, errno.ENOENT):
                raise
    if _tag_of(target) != tag:
        return f"{target} is not minirun's"
    try:
        os.unlink(target)
    except FileNotFoundError:
        pass
    return None


# -- as journal steps (shared by the drivers that name a namespace) -------------

def attach_step(c, name: str, pid: int) -> None:
    from .. import journal
    tag = f"{c.paths.owner_tag}:{c.id}"
    with journal.step(c, "net.netns", name=name, tag=tag, ns=identity(pid)):
        attach(name, pid, tag)


def undo_steps(c, steps) -> list:
    """Undo the net.netns steps among `steps`; returns failures (teardown.Failure)."""
    from ..failures import Failure
    failures = []
    for s in steps:
        if s.kind != "net.netns":
            continue
        try:
            why = detach(s.intent["name"], s.intent["tag"], s.intent.get("ns"))
        except Exception as e:  # noqa: BLE001
            failures.append(Failure("ip netns delete", s.intent["name"], str(e)))
            continue
        if why and s.done:  # we made it, and something else is there now: say so
            import sys
            print(f"minirun: left {why} alone", file=sys.stderr)
    return failures
