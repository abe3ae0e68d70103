"""Unpack one layer tar (plain, gzip, bzip2 or xz) into a directory, with the OCI
whiteout rules turned into overlayfs's own:

    .wh.NAME          NAME is deleted from the layers below: a 0/0 character device
    .wh..wh..opq      the directory hides what the layers below have in it: the
                      trusted.overlay.opaque=y xattr on it

Every entry is created by us, one path component at a time, never following a
link: an entry whose name leaves the layer (`..`, or a parent that is a symlink
in this layer) is refused; a symlink's target is stored as it is (it is resolved
inside the container, where / is the container's). Hard links must name an
entry of the same layer. The blob's sha256 is computed as it is read and must be
the digest the manifest gave, or nothing is kept.
"""
from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from pathlib import Path

from ..errors import MinirunError

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


class LayerError(MinirunError):
    pass


class _Hashing:
    """A read-only stream that hashes what is read through it."""

    def __init__(self, f):
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def read(self, size=-1):
        data = self.f.read(size)
        self.h.update(data)
        self.n += len(data)
        return data

    def drain(self) -> str:
        while self.read(1 << 20):
            pass
        return self.h.hexdigest()


def _clean(name: str) -> list[str]:
    """The entry's path components, or LayerError for one that leaves the layer."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise LayerError(f"layer entry {name!r} leaves the layer ('..')")
    if "\0" in name:
        raise LayerError("layer entry with a NUL byte in its name")
    return parts


def _parent(root: str, parts: list[str]) -> str:
    """The directory that will hold parts[-1], made as needed; never through a link."""
    d = root
    for p in parts[:-1]:
        d = os.path.join(d, p)
        try:
            st = os.lstat(d)
        except FileNotFoundError:
            os.mkdir(d, 0o755)
            continue
        if stat.S_ISLNK(st.st_mode):
            raise LayerError(f"layer entry {'/'.join(parts)!r} goes through the symlink "
                             f"{os.path.relpath(d, root)!r}")
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(d)  # a later entry of the layer replaces it
            os.mkdir(d, 0o755)
    return d


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        import shutil
        shutil.rmtree(path)
    else:
        os.unlink(path)


def unpack(fileobj, dest: Path, digest: str | None = None) -> tuple[str, int]:
    """Unpack the layer read from `fileobj` into `dest` (an empty directory). Returns
    (sha256 hex of the blob as read, bytes unpacked). LayerError if `digest` (hex)
    is given and differs."""
    src = _Hashing(fileobj)
    root = str(dest)
    size = 0
    dirs: list[tuple[str, tarfile.TarInfo]] = []
    try:
        tar = tarfile.open(fileobj=src, mode="r|*")
    except tarfile.TarError as e:
        raise LayerError(f"not a tar archive: {e}") from None
    with tar:
        try:
            for m in tar:
                size += _entry(tar, m, root, dirs)
        except tarfile.TarError as e:
            raise LayerError(f"bad tar archive: {e}") from None
    got = src.drain()
    if digest is not None and got != digest:
        raise LayerError(f"layer sha256:{digest[:12]} does not match its digest "
                         f"(read sha256:{got[:12]})")
    for path, m in reversed(dirs):  # after their content: creating entries changes mtime
        _attrs(path, m)
    return got, size


def _entry(tar, m: tarfile.TarInfo, root: str, dirs: list) -> int:
    parts = _clean(m.name)
    if not parts:  # "./": the layer's root directory
        if m.isdir():
            dirs.append((root, m))
        return 0
    base = parts[-1]
    parent = _parent(root, parts)
    if base == OPAQUE:
        os.setxattr(parent, "trusted.overlay.opaque", b"y")
        return 0
    if base.startswith(WHITEOUT):
        path = os.path.join(parent, base[len(WHITEOUT):])
        _remove(path)
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(0, 0))
        return 0
    path = os.path.join(parent, base)
    if m.isdir():
        try:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                _remove(path)
                os.mkdir(path, 0o700)
        except FileNotFoundError:
            os.mkdir(path, 0o700)
        dirs.append((path, m))
        return 0
    _remove(path)
    if m.isreg():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        with os.fdopen(fd, "wb") as out, tar.extractfile(m) as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
    elif m.issym():
        os.symlink(m.linkname, path)
    elif m.islnk():
        target = _clean(m.linkname)
        if not target:
            raise LayerError(f"hard link {m.name!r} to the layer's root")
        tpath = os.path.join(_parent(root, target), target[-1])
        try:
            tst = os.lstat(tpath)
        except FileNotFoundError:
            raise LayerError(f"hard link {m.name!r} to {m.linkname!r}, not in this "
                             "layer") from None
        if stat.S_ISDIR(tst.st_mode):
            raise LayerError(f"hard link {m.name!r} to a directory")
        os.link(tpath, path, follow_symlinks=False)
        return 0
    elif m.ischr() or m.isblk():
        kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
        os.mknod(path, 0o600 | kind, os.makedev(m.devmajor, m.devminor))
    elif m.isfifo():
        os.mkfifo(path, 0o600)
    else:
        return 0  # sparse and other GNU extensions are read as regular files by tarfile
    _attrs(path, m)
    return m.size if m.isreg() else 0


def _attrs(path: str, m: tarfile.TarInfo) -> None:
    os.chown(path, m.uid, m.gid, follow_symlinks=False)
    if not m.issym():
        os.chmod(path, stat.S_IMODE(m.mode))
    for key, value in (m.pax_headers or {}).items():
        if key.startswith("SCHILY.xattr."):
            try:
                os.setxattr(path, key[len("SCHILY.xattr."):],
                            value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
            except OSError:
                pass  # an xattr this file system refuses (the layer works without it)
    try:
        os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)
    except OSError:
        pass
