"""Naming a container's network namespace so `ip netns` sees it, as iproute2 does.

`ip netns` lists the files in /run/netns; each is a bind mount of a
/proc/PID/ns/net file, which keeps the namespace alive and lets `ip netns exec`
enter it.

/run/netns itself must be a mount point before any name is mounted in it, as
`ip netns add` and podman make it: each of them, finding a plain directory,
bind-mounts /run/netns onto itself (and makes it shared), and a name mounted
before that bind is hidden under it -- unreachable by its path, so its
`ip netns delete` fails and the namespace leaks. So minirun does the same
first, under a lock on the directory, and tags the directory with the id of
the mount it made; when the last name of /run/netns (anyone's) goes, it
unmounts that mount again if it is still the one it made, so nothing is left
after the last container. A mount point that was there before (iproute2's,
podman's, a tmpfs) is used as it is and never removed.

Ownership: /run/netns is host-wide, and an administrator's `ip netns add web`
must survive `minirun run --name web`. The file is created with O_EXCL (an
existing name is refused, never reused) and tagged with an extended attribute
naming the state root and the container (`trusted.minirun`); the bind mount
is proven ours by the namespace's own inode, recorded before the mount. Undo
unmounts only a mount of that namespace and unlinks only a file carrying our
tag.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os

from .. import kernel as k
from .. import oplog
from ..errors import Conflict, SyscallError

NETNS_DIR = "/run/netns"
XATTR = "trusted.minirun"
DIR_XATTR = "trusted.minirun-netns-dir"  # on /run/netns: the id of the mount minirun made


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


@contextlib.contextmanager
def _dir_locked():
    """/run/netns, locked against the other minirun processes (of any state root) that
    add or remove names, or its mount. The lock is a flock on its parent, /run: an open
    descriptor of /run/netns itself would keep its mount busy when the last name goes."""
    os.makedirs(NETNS_DIR, mode=0o755, exist_ok=True)
    fd = os.open(os.path.dirname(NETNS_DIR), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _dir_mount_id() -> int | None:
    """The id of the mount at /run/netns, or None where it is a plain directory."""
    fds = [os.open(p, os.O_PATH | os.O_CLOEXEC) for p in (NETNS_DIR, os.path.dirname(NETNS_DIR))]
    try:
        own, parent = (k.kernel.mount_id(fd) for fd in fds)
    finally:
        for fd in fds:
            os.close(fd)
    return own if own != parent else None


def _record_dir_mount() -> None:
    oplog.record(f"mount --rbind {NETNS_DIR} {NETNS_DIR} && mount --make-shared {NETNS_DIR}",
                 why="make /run/netns a mount point before naming a namespace in it, as "
                 "`ip netns add` does: a bind of it made later (by ip or podman) would hide "
                 "the name; minirun unmounts it again with the last name")


def _record_attach(name: str, pid: int) -> None:
    oplog.record(f"ip netns attach {name} {oplog.pid_text(pid)}",
                 why=f"name the network namespace of the container's PID 1 (PID "
                 f"{oplog.pid_text(pid)}): `ip netns` lists it, `ip -n {name}` works in it")


def _ensure_dir_mount() -> None:
    """Make /run/netns a mount point of its own (see the module's docstring); the caller
    holds the directory's lock."""
    if _dir_mount_id() is not None:
        return
    _record_dir_mount()
    k.kernel.mount(NETNS_DIR, NETNS_DIR, None, k.MS_BIND | k.MS_REC)
    k.kernel.mount(None, NETNS_DIR, None, k.MS_SHARED)
    try:
        os.setxattr(NETNS_DIR, DIR_XATTR, str(_dir_mount_id()).encode())
    except OSError:
        pass  # no extended attributes here: the mount is not provably ours, and stays


def _release_dir_mount() -> None:
    """Unmount the mount of /run/netns that minirun made, if it is still that one and no
    name (anyone's) is left in it; the caller holds the directory's lock."""
    try:
        made = os.getxattr(NETNS_DIR, DIR_XATTR).decode()
    except OSError:
        return
    if str(_dir_mount_id()) != made:  # gone (or another's now): the tag is stale
        with contextlib.suppress(OSError):
            os.removexattr(NETNS_DIR, DIR_XATTR)
        return
    if os.listdir(NETNS_DIR):
        return
    oplog.record(f"umount {NETNS_DIR}", why="the mount of /run/netns minirun made for its "
                 "names: its last name is gone")
    if oplog.skip():
        return
    try:
        k.kernel.umount(NETNS_DIR)  # not lazily: a name mounted meanwhile keeps it (EBUSY)
    except SyscallError:
        return
    with contextlib.suppress(OSError):
        os.removexattr(NETNS_DIR, DIR_XATTR)  # on the directory itself (the bind was of it)


def attach(name: str, pid: int, tag: str) -> None:
    """Bind-mount /proc/PID/ns/net at /run/netns/NAME (`ip netns attach NAME PID`)."""
    if oplog.skip():  # a plan: what would be done, nothing touched
        if not os.path.isdir(NETNS_DIR) or _dir_mount_id() is None:
            _record_dir_mount()
        _record_attach(name, pid)
        return
    with _dir_locked():
        _ensure_dir_mount()
        _record_attach(name, pid)
        try:
            _attach(name, pid, tag)
        finally:
            if not os.path.lexists(path(name)):
                _release_dir_mount()  # a failed attach leaves no mount of ours behind


def _attach(name: str, pid: int, tag: str) -> None:
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
    if not os.path.lexists(path(name)):
        return None
    with _dir_locked():
        try:
            return _detach(name, tag, ns)
        finally:
            _release_dir_mount()


def _detach(name: str, tag: str, ns: list[int] | None) -> str | None:
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
