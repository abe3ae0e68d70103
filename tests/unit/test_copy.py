"""minirun cp's host side: Docker's destination rules, and a crafted stream cannot write
outside the destination (through a symlink it makes first, or with ../)."""
import io
import json
import os
import tarfile

import pytest

from minirun import copy
from minirun.errors import MinirunError


def stream(head, members):
    buf = io.BytesIO()
    buf.write(json.dumps(head).encode() + b"\n")
    with tarfile.open(fileobj=buf, mode="w|") as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    buf.seek(0)
    return buf


def entry(name, kind=tarfile.REGTYPE, data=b"", link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info, data if kind == tarfile.REGTYPE else None


def test_a_symlink_made_by_the_stream_does_not_lead_out(tmp_path):
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    s = stream({"kind": "dir", "name": "d", "contents": False},
               [entry("x", tarfile.DIRTYPE), entry("x/l", tarfile.SYMTYPE, link=str(outside)),
                entry("x/l/evil", data=b"no")])
    with pytest.raises(MinirunError, match="outside"):
        copy._unpack(str(dest), s, archive=False)
    assert os.listdir(outside) == []
    assert os.readlink(dest / "d" / "l") == str(outside)  # the link itself is fine


def test_dot_dot_is_refused(tmp_path):
    s = stream({"kind": "dir", "name": "d", "contents": False},
               [entry("x", tarfile.DIRTYPE), entry("x/../../evil", data=b"no")])
    with pytest.raises(MinirunError, match="outside"):
        copy._unpack(str(tmp_path), s, archive=False)
    assert not (tmp_path.parent / "evil").exists()


def test_an_existing_symlink_file_is_replaced_not_written_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "dest").mkdir()
    os.symlink(victim, tmp_path / "dest" / "f")
    s = stream({"kind": "file", "name": "f", "contents": False}, [entry("x", data=b"new")])
    copy._unpack(str(tmp_path / "dest"), s, archive=False)  # dest is a dir: dest/f
    assert victim.read_text() == "keep"
    assert (tmp_path / "dest" / "f").read_text() == "new"
    assert not os.path.islink(tmp_path / "dest" / "f")


@pytest.mark.parametrize("arg,want", [("c:/a", ("c", "/a")), ("/a:b", (None, "/a:b")),
                                      ("./a:b", (None, "./a:b")), ("a", (None, "a")),
                                      ("-", (None, "-"))])
def test_split(arg, want):
    assert copy.split(arg) == want
