"""The image store's pure parts: references, Docker's ENTRYPOINT/CMD rules, the layer
unpacker (whiteouts, refusals, digests) and the fast path's optional COMMAND."""
import gzip
import hashlib
import io
import os
import stat
import tarfile

import pytest

from minirun import fastpath
from minirun.errors import UsageError
from minirun.images.apply import ImageRun, command
from minirun.images.store import check_ref, split_ref
from minirun.images.unpack import LayerError, unpack


def _tar(entries, compress=False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            info.type, info.mode = kind, 0o755 if kind == tarfile.DIRTYPE else 0o644
            if kind == tarfile.SYMTYPE or kind == tarfile.LNKTYPE:
                info.linkname = data
                data = None
            elif data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    return gzip.compress(raw) if compress else raw


REG, DIR, SYM, LNK = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE


def test_refs():
    assert split_ref("busybox") == ("busybox", "latest")
    assert split_ref("127.0.0.1:5000/bb:1") == ("127.0.0.1:5000/bb", "1")
    assert split_ref("127.0.0.1:5000/bb") == ("127.0.0.1:5000/bb", "latest")
    assert check_ref("example/bb") == "example/bb:latest"
    for bad in ("Upper", "a@sha256:00", "", ":x", "a:b c"):
        with pytest.raises(UsageError):
            check_ref(bad)


def _img(ep=(), cmd=()):
    return ImageRun("i", "0" * 64, ("/l",), tuple(ep), tuple(cmd), {}, None, None, {}, ())


def test_entrypoint_and_cmd_rules():
    img = _img(["/bin/sh", "-c"], ["echo hi"])
    assert command(None, (), img) == ("/bin/sh", "-c", "echo hi")
    assert command(None, ("ls",), img) == ("/bin/sh", "-c", "ls")
    assert command("/bin/cat", ("f",), img) == ("/bin/cat", "f")   # CMD dropped
    assert command("/bin/cat", (), img) == ("/bin/cat",)
    assert command("", ("ls", "-l"), img) == ("ls", "-l")          # "" resets it
    assert command(None, (), _img(cmd=["sh"])) == ("sh",)
    assert command(None, (), _img()) == ()                        # run says: no command
    assert command("/bin/echo", ("x",), None) == ("/bin/echo", "x")  # a path rootfs


def test_fastpath_takes_image_without_command():
    assert fastpath.parse(["run", "--rm", "busybox"])[2:] == ("busybox", [])
    assert fastpath.parse(["run", "--entrypoint", "/bin/ls", "bb", "-l"])[1]["entrypoint"] \
        == "/bin/ls"


def test_unpack_whiteouts_and_digest(tmp_path):
    blob = _tar([("./", DIR, None), ("d", DIR, None), ("d/.wh.gone", REG, b""),
                 ("o/.wh..wh..opq", REG, b""), ("o/new", REG, b"n"),
                 ("d/f", REG, b"data"), ("d/hard", LNK, "d/f"), ("l", SYM, "/etc/passwd")],
                compress=True)
    got, size = unpack(io.BytesIO(blob), tmp_path, hashlib.sha256(blob).hexdigest())
    assert got == hashlib.sha256(blob).hexdigest() and size == 5
    st = os.lstat(tmp_path / "d" / "gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert os.getxattr(tmp_path / "o", "trusted.overlay.opaque") == b"y"
    assert not (tmp_path / "o" / ".wh..wh..opq").exists()
    assert os.readlink(tmp_path / "l") == "/etc/passwd"  # stored as-is, never followed
    assert os.stat(tmp_path / "d" / "hard").st_ino == os.stat(tmp_path / "d" / "f").st_ino


def test_unpack_digest_mismatch(tmp_path):
    with pytest.raises(LayerError, match="does not match"):
        unpack(io.BytesIO(_tar([("f", REG, b"x")])), tmp_path, "0" * 64)


@pytest.mark.parametrize("entries", [
    [("../escape", REG, b"x")],
    [("a/../../escape", REG, b"x")],
    [("link", SYM, "/"), ("link/etc/evil", REG, b"x")],        # through a symlink
    [("link", SYM, "../.."), ("link/x", REG, b"x")],
    [("h", LNK, "../../etc/passwd")],                          # hard link out
    [("h", LNK, "/etc/passwd")],                               # not in this layer
])
def test_unpack_refuses_escapes(tmp_path, entries):
    dest = tmp_path / "layer"
    dest.mkdir()
    with pytest.raises(LayerError):
        unpack(io.BytesIO(_tar(entries)), dest)
    assert not (tmp_path / "escape").exists()
    assert not os.path.exists("/etc/evil")


def test_unpack_absolute_names_stay_inside(tmp_path):
    unpack(io.BytesIO(_tar([("/abs/file", REG, b"x")])), tmp_path)
    assert (tmp_path / "abs" / "file").read_bytes() == b"x"
