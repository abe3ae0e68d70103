"""Finding (and if need be building) the small C monitor of detached containers.

The binary is compiled once from monitor.c with the system's C compiler and
kept next to the package, keyed by the source's hash. Without a compiler,
minirun falls back to staying in Python as the monitor (~10 MB per container).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("monitor.c")


def _candidates(key: str) -> list[Path]:
    dirs = [Path(__file__).with_name("libexec")]
    if os.environ.get("MINIRUN_ROOT"):
        dirs.append(Path(os.environ["MINIRUN_ROOT"]) / "libexec")
    dirs.append(Path("/var/lib/minirun/libexec"))
    return [d / f"minirun-monitor-{key}" for d in dirs]


def binary() -> str | None:
    """The path of the compiled monitor, building it on first use; None if impossible."""
    from .state import sha256_hex  # hashlib would cost a foreground run ~3 ms
    key = sha256_hex(SOURCE.read_text())[:12]
    paths = _candidates(key)
    for p in paths:
        if os.access(p, os.X_OK):
            return str(p)
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    for p in paths:
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(f".{p.name}.{os.getpid()}")
            subprocess.run([cc, "-O2", "-Wall", "-o", str(tmp), str(SOURCE)], check=True,
                           capture_output=True, timeout=60)
            os.replace(tmp, p)
            return str(p)
        except (OSError, subprocess.SubprocessError):
            continue
    return None
