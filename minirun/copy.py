"""`minirun cp`: copy files between the host and a container, with `docker cp`'s rules.

    minirun cp [-a] [-L] CONTAINER:SRC HOSTDEST|-
    minirun cp [-a] [-L] HOSTSRC|- CONTAINER:DEST

One side packs SRC into a tar stream, the other unpacks it, across a pipe.
The container's side runs in a forked child whose root is the container's
root: a running container's through /proc/PID/root (chroot: its volumes and
mounts are seen as inside); a stopped one's writable layer remounted over its
image in a private mount namespace that dies with the child. Every path on the
container's side, symlinks included, is therefore resolved by the kernel
inside the container's root: no symlink in the container can lead minirun
outside it. The host's side unpacks only below the real destination directory
(each entry's parent must resolve inside it; an existing non-directory is
replaced, never written through).

Docker's rules: SRC ending in `/.` copies the directory's contents; a
directory DEST that exists receives SRC under its own name; DEST that does not
exist becomes the copy (its parent must exist; a DEST ending in `/` must
exist); a directory cannot replace a file. A symlink SRC is copied as a link
unless `-L` (or SRC ends in `/` or `/.`). Ownership becomes the destination's
user (root) unless `-a` keeps the source's uid/gid. `-` is a tar stream on
stdin/stdout, as Docker's.
"""
from __future__ import annotations

import json
import os
import stat
import tarfile

from .errors import MinirunError, NotFound, UsageError
from .record import STOPPED, Container

TOP = "x"  # the name SRC has inside the stream between the two sides


def split(arg: str) -> tuple[str | None, str]:
    """("NAME", "PATH") for NAME:PATH, (None, PATH) for a local path. As in Docker, a
    local path with a ':' is written as ./a:b or /a:b."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    ref, _, path = arg.partition(":")
    return ref, path


def copy(paths, src: str, dst: str, archive: bool = False, follow: bool = False,
         stdin=None, stdout=None) -> None:
    from .state import lookup
    (s_ref, s_path), (d_ref, d_path) = split(src), split(dst)
    if (s_ref is None) == (d_ref is None):
        raise UsageError("cp copies between a container and the host: exactly one of SRC "
                         "and DEST is CONTAINER:PATH")
    if not (s_path if s_ref else d_path):
        raise UsageError("cp: the path in the container must not be empty")
    if s_ref is not None:
        c = lookup(paths, s_ref)
        s_path = _absolute(s_path, c)
        if d_path == "-":
            _in_container(c, lambda: _pack(s_path, follow, os.fdopen(1, "wb"), name=None),
                          out_fd=stdout.fileno())
            return
        r, w = os.pipe()
        _in_container(c, lambda: _pack(s_path, follow, os.fdopen(w, "wb")), keep=w,
                      parent=lambda: _unpack(d_path, os.fdopen(r, "rb"), archive),
                      close=(r, w))
    else:
        c = lookup(paths, d_ref)
        d_path = _absolute(d_path, c)
        if s_path == "-":
            fd = stdin.fileno()
            _in_container(c, lambda: _unpack_stream(d_path, os.fdopen(fd, "rb"), archive),
                          keep=fd)
            return
        r, w = os.pipe()
        _in_container(c, lambda: _unpack(d_path, os.fdopen(r, "rb"), archive), keep=r,
                      parent=lambda: _pack(s_path, follow, os.fdopen(w, "wb")),
                      close=(r, w))


def _absolute(path: str, c: Container) -> str:
    """A relative path in the container is relative to its working directory."""
    return path if path.startswith("/") else os.path.join(c.config.workdir or "/", path)


# -- the container's side: a child whose root is the container's -------------

def _in_container(c: Container, work, keep: int | None = None, parent=None,
                  close: tuple = (), out_fd: int | None = None) -> None:
    """Run `work()` in a child whose root is the container's, and `parent()` here at the
    same time; raise the first real error of either side (a broken pipe is only the
    echo of the other side's). `keep`: the child's end of the pipe (the others in
    `close` belong to the parent)."""
    import contextlib
    from .state import locked, reload
    now = reload(c)
    if now is None:
        raise NotFound(f"no such container: {c.name}")
    # a stopped container's layer is mounted by the child: no start or rm meanwhile
    # (a running one's exit must not wait for a copy)
    guard = locked(now) if now.state == STOPPED else contextlib.nullcontext(True)
    with guard as exists:
        now = reload(c) if exists else None
        if now is None:
            raise NotFound(f"no such container: {c.name}")
        rootfd = _root_of(now)
        err_r, err_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            _child(now, work, rootfd, err_r, err_w, keep, close, out_fd)
        os.close(err_w)
        if rootfd is not None:
            os.close(rootfd)
        if keep is not None and close:
            os.close(keep)  # else our own copy of the child's end: no EOF would come
        failure = None
        try:
            if parent is not None:
                parent()
        except BrokenPipeError:
            failure = MinirunError("cp: the container's side stopped reading")
        except MinirunError as e:
            failure = e
        except (OSError, tarfile.TarError) as e:
            failure = MinirunError(_oserror_text(e))
        finally:
            for fd in close:
                if fd != keep:
                    try:
                        os.close(fd)
                    except OSError:
                        pass  # closed by its file object
        with os.fdopen(err_r, "rb") as f:
            child_err = f.read().decode(errors="replace")
        _, status = os.waitpid(pid, 0)
    if child_err:
        raise MinirunError(child_err)
    if failure is not None:
        raise failure
    if status != 0:
        raise MinirunError("cp: the copy failed on the container's side")


def _child(c, work, rootfd, err_r, err_w, keep, close, out_fd) -> None:
    from . import kernel as k
    code = 0
    try:
        os.close(err_r)
        for fd in close:
            if fd != keep:
                os.close(fd)
        if out_fd is not None:
            os.dup2(out_fd, 1)
        k.kernel.set_dumpable(False)  # nothing in the container may ptrace us
        if rootfd is None:
            _mount_layer(c)
        else:
            os.fchdir(rootfd)
            os.chroot(".")
            os.chdir("/")
        work()
    except BrokenPipeError:
        code = 125  # the host's side failed and says why
    except MinirunError as e:
        os.write(err_w, str(e).encode())
        code = e.exit_code
    except (OSError, tarfile.TarError) as e:
        os.write(err_w, _oserror_text(e).encode())
        code = 125
    except BaseException as e:  # noqa: BLE001 - reported, never a traceback
        os.write(err_w, f"cp failed: {e!r}".encode())
        code = 125
    os._exit(code)


def _oserror_text(e: Exception) -> str:
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    return str(e)


def _root_of(c: Container) -> int | None:
    """An fd of a running container's root (/proc/PID/root); None for a stopped one, whose
    layer the child mounts itself."""
    from .procs import process_alive
    if c.state != STOPPED and c.pid and process_alive(c.pid, c.pid_start):
        fd = os.open(f"/proc/{c.pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        if process_alive(c.pid, c.pid_start):  # not a recycled PID's root
            return fd
        os.close(fd)
    if c.state != STOPPED:
        raise MinirunError(f"container {c.name} is starting or being removed: try again")
    if not (c.dir / "upper").is_dir():
        raise MinirunError(f"container {c.name} has no file system left")
    return None


def _mount_layer(c: Container) -> None:
    """A stopped container's file system: its writable layer over its image, mounted in
    a private mount namespace of this child (gone with it), then chroot into it.
    Volumes are not mounted: what is copied is the container's own files."""
    from . import kernel as k
    lower = ":".join(c.config.lowers) if c.config.lowers else c.config.rootfs
    k.kernel.unshare(k.CLONE_NEWNS)
    k.kernel.mount(None, "/", None, k.MS_REC | k.MS_PRIVATE)
    merged = str(c.dir / "merged")
    k.kernel.mount("overlay", merged, "overlay", k.MS_NODEV,
                   f"lowerdir={lower},upperdir={c.dir / 'upper'},workdir={c.dir / 'work'}",
                   display=merged)
    os.chdir(merged)
    os.chroot(".")
    os.chdir("/")


# -- packing --------------------------------------------------------------------

def _pack(src: str, follow: bool, out, name: str | None = TOP) -> None:
    """Write a header line (what SRC is) and a tar stream of SRC named `name` (None:
    no header, SRC under its own name: `cp NAME:SRC -`)."""
    contents = src.endswith("/.") or src == "."
    following = follow or src.endswith(("/", "/."))
    try:
        st = os.stat(src) if following else os.lstat(src)
    except FileNotFoundError:
        raise NotFound(f"no such file or directory: {src}") from None
    except NotADirectoryError:
        raise MinirunError(f"not a directory: {src}") from None
    if src.endswith(("/", "/.")) and not stat.S_ISDIR(st.st_mode):
        raise MinirunError(f"not a directory: {src}")
    base = os.path.basename(os.path.normpath(src)) if os.path.normpath(src) != "/" else ""
    top = os.path.realpath(src) if following else src
    kind = "dir" if stat.S_ISDIR(st.st_mode) else "file"
    with out:
        if name is not None:
            out.write(json.dumps({"kind": kind, "name": base,
                                  "contents": contents or not base}).encode() + b"\n")
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            tf.add(top, arcname=name if name is not None else (base or "."), recursive=True)


# -- unpacking ------------------------------------------------------------------

def _unpack(dst: str, stream, archive: bool) -> None:
    """Read the header, work out where SRC goes by Docker's rules, and unpack there."""
    with stream:
        line = stream.readline()
        if not line:
            raise MinirunError("cp: nothing was received from the source side")
        head = json.loads(line)
        target, contents = _target(dst, head)
        base = os.path.realpath(os.path.dirname(target))
        leaf = os.path.basename(target)

        def rename(member: tarfile.TarInfo, _path: str):
            if member.name == TOP:
                if contents and os.path.isdir(target):
                    return None  # DEST exists: its own attributes stay
                new = leaf
            elif member.name.startswith(TOP + "/"):
                new = leaf + member.name[len(TOP):]
            else:
                raise MinirunError(f"cp: unexpected entry {member.name!r} in the stream")
            changes = {"name": new}
            if member.islnk():  # a hard link names another entry of the stream
                changes["linkname"] = leaf + member.linkname[len(TOP):]
            return _confine(member.replace(**changes, deep=False), base, archive)

        with tarfile.open(fileobj=stream, mode="r|") as tf:
            tf.extractall(base, numeric_owner=True, filter=rename)


def _unpack_stream(dst: str, stream, archive: bool) -> None:
    """`cp - NAME:DEST`: a tar stream from stdin, unpacked into the directory DEST."""
    if not os.path.isdir(dst):
        raise MinirunError(f"destination {dst} must be an existing directory")
    base = os.path.realpath(dst)
    with stream, tarfile.open(fileobj=stream, mode="r|") as tf:
        tf.extractall(base, numeric_owner=True,
                      filter=lambda m, _p: _confine(m, base, archive))


def _target(dst: str, head: dict) -> tuple[str, bool]:
    """Where the copy of SRC goes (Docker's rules), and whether DEST takes SRC's contents."""
    wants_dir = dst.endswith(("/", "/."))
    path = os.path.normpath(dst)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise MinirunError(f"not a directory: {os.path.dirname(path)}") from None
    if st is None:
        if wants_dir and head["kind"] == "file":
            raise MinirunError(f"destination directory {dst} must exist")
        if not os.path.isdir(os.path.dirname(path) or "/"):
            raise NotFound(f"no such directory: {os.path.dirname(path)}")
        return path, True
    if not stat.S_ISDIR(st.st_mode):
        if head["kind"] == "dir":
            raise MinirunError(f"cannot copy a directory to a file: {dst}")
        if wants_dir:
            raise MinirunError(f"not a directory: {dst}")
        return path, False
    if head["kind"] == "dir" and head["contents"]:
        return path, True
    return os.path.join(path, head["name"]), False


def _confine(member: tarfile.TarInfo, base: str, archive: bool) -> tarfile.TarInfo:
    """Refuse an entry whose parent directory resolves outside `base` (through a symlink
    made by an earlier entry, or already there); replace an existing non-directory
    instead of writing through it; the destination's owner unless `archive`."""
    name = member.name.lstrip("/")
    if os.path.isabs(name) or ".." in name.split("/"):
        raise MinirunError(f"cp: refusing entry {member.name!r}: outside the destination")
    path = os.path.join(base, name)
    parent = os.path.realpath(os.path.dirname(path))
    if parent != base and not parent.startswith(base.rstrip("/") + "/"):
        raise MinirunError(f"cp: refusing {member.name!r}: it would be written outside "
                           f"{base} (through a symbolic link)")
    try:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or not member.isdir():
            if stat.S_ISDIR(st.st_mode):
                raise MinirunError(f"cannot overwrite directory {path} with a non-directory")
            os.unlink(path)
    except FileNotFoundError:
        pass
    changes: dict = {"name": name}
    if not archive:
        changes.update(uid=os.getuid(), gid=os.getgid(), uname="", gname="")
    return member.replace(**changes, deep=False)
