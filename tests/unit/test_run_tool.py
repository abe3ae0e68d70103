"""procs.run_tool: a tool run to completion without subprocess (exit code, stdout, stderr)."""
from __future__ import annotations

import os

from minirun.procs import run_tool


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_input_output_error_and_exit_code():
    assert run_tool("/bin/cat", ["cat"], "hello\n") == (0, "hello\n", "")
    assert run_tool("sh", ["sh", "-c", "echo out; echo err >&2; exit 3"]) == (3, "out\n", "err\n")
    assert run_tool("/bin/cat", ["cat"]) == (0, "", "")  # no input: /dev/null


def test_big_input_and_output_cannot_deadlock():
    """1 MB in and out at once: a pipe-based runner writing all input before reading
    would block on a full pipe; files cannot."""
    data = "x" * (1 << 20)
    code, out, err = run_tool("/bin/cat", ["cat"], data)
    assert code == 0 and out == data and err == ""


def test_no_descriptor_is_left_open():
    before = _open_fds()
    for _ in range(20):
        run_tool("/bin/true", ["true"], "in")
    assert _open_fds() == before
