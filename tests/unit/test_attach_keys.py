"""attach's detach keys: Docker's --detach-keys syntax, and finding them in typed input."""
import pytest

from minirun.attach import parse_keys, scan
from minirun.errors import UsageError


def test_parse_keys():
    assert parse_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_keys("ctrl-@,a,ctrl-[") == b"\x00a\x1b"
    for bad in ("ctrl-1", "ctrl-pq", "", "ab"):
        with pytest.raises(UsageError):
            parse_keys(bad)


def test_scan_finds_the_keys_across_reads_and_passes_the_rest_on():
    keys = b"\x10\x11"
    assert scan(b"", b"ls\n", keys) == (b"ls\n", b"", False)
    send, held, done = scan(b"", b"x\x10", keys)
    assert (send, held, done) == (b"x", b"\x10", False)
    assert scan(held, b"\x11", keys) == (b"", b"", True)
    # ctrl-p then something else: both go on
    assert scan(b"\x10", b"a", keys) == (b"\x10a", b"", False)
    assert scan(b"\x10", b"\x10\x11", keys) == (b"\x10", b"", True)
