"""The Docker compatibility list (tests/docker_compat.txt): parse it, and run every line
in a throwaway host against minirun. tests/e2e/test_compat.py runs it under pytest;
`python tests/compat.py` runs it alone and prints a line per command;
scripts/compat-table writes the README's table from the same file."""
from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path
from typing import NamedTuple

DATA = Path(__file__).resolve().parent / "docker_compat.txt"


class Line(NamedTuple):
    section: str
    command: str
    code: int
    pattern: str
    unsupported: str | None  # why, for a line that documents what does not work
    number: int


def load(path: Path = DATA) -> list[Line]:
    lines, section = [], ""
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        if raw.startswith("## "):
            section = raw[3:].strip()
            continue
        if not raw.strip() or raw.startswith("#"):
            continue
        parts = [p.strip() for p in raw.split("||")]
        if len(parts) not in (3, 4) or not parts[1].lstrip("-").isdigit():
            raise ValueError(f"{path}:{n}: expected COMMAND || CODE || REGEX [|| unsupported: "
                             f"WHY]: {raw!r}")
        why = None
        if len(parts) == 4:
            if not parts[3].startswith("unsupported:"):
                raise ValueError(f"{path}:{n}: the fourth field is 'unsupported: WHY'")
            why = parts[3][len("unsupported:"):].strip()
        if not parts[0].startswith("minirun "):
            raise ValueError(f"{path}:{n}: a command starts with 'minirun '")
        re.compile(parts[2], re.M)
        lines.append(Line(section, parts[0], int(parts[1]), parts[2], why, n))
    return lines


def run_all(host, rootfs: str, lines: list[Line] | None = None, out=None) -> list[str]:
    """Run every line in `host` (tests/harness.Host), in order; the failures, as text."""
    import subprocess
    bindir = host.dir / "compat-bin"
    bindir.mkdir(exist_ok=True)
    wrapper = bindir / "minirun"
    wrapper.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m minirun \"$@\"\n")
    wrapper.chmod(0o755)
    scratch = host.dir / "compat-tmp"
    scratch.mkdir(exist_ok=True)
    env = f"PATH={shlex.quote(str(bindir))}:$PATH R={shlex.quote(rootfs)} " \
          f"T={shlex.quote(str(scratch))}"
    failures = []
    for line in lines if lines is not None else load():
        try:
            res = host.run(f"export {env}; {line.command}", timeout=60)
            code, text = res.returncode, res.stdout + res.stderr
        except subprocess.TimeoutExpired:
            code, text = None, "timed out"
        good = code == line.code and re.search(line.pattern, text, re.M) is not None
        if out:
            print(f"{'ok  ' if good else 'FAIL'} {code} {line.command}", file=out)
        if not good:
            failures.append(f"line {line.number}: {line.command}: exit {code} (expected "
                            f"{line.code}), pattern {line.pattern!r}, output {text[-400:]!r}")
    return failures


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from harness import ROOTFS, Host
    h = Host("compat")
    try:
        failed = run_all(h, str(ROOTFS), out=sys.stdout)
    finally:
        h.close()
    for f in failed:
        print(f, file=sys.stderr)
    sys.exit(1 if failed else 0)
