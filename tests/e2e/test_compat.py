"""Every line of tests/docker_compat.txt, in one throwaway host (see tests/compat.py)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import compat  # noqa: E402


def test_the_list_parses():
    lines = compat.load()
    assert len(lines) > 50 and {l.section for l in lines} >= {"Containers", "Networks"}


def test_docker_command_lines(host, rootfs):
    failures = compat.run_all(host, str(rootfs))
    assert not failures, "\n".join(failures)
