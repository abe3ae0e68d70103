"""Finding (and if need be building) the small C monitor of detached containers, and
starting it as the log tee of a foreground one (`start_tee`).

The binary is compiled once from monitor.c with the system's C compiler and
kept next to the package, keyed by the source's hash. Without a compiler,
minirun falls back to staying in Python as the monitor (~10 MB per container).
"""
from __future__ import annotations

import os
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
    import shutil
    import subprocess
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


def start_tee(c) -> tuple[int, int, int] | None:
    """For a foreground container (not --rm, no tty): start the C monitor as a tee from
    two pipes to our standard output and error and to the log. Returns (its pid, the
    stdout pipe, the stderr pipe) to give PID 1; None without a compiled monitor."""
    exe = binary()
    if exe is None:
        return None
    log = os.open(c.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    try:
        # posix_spawn: no fork of this process, no subprocess import; the child's fds are
        # the inheritable ones (0-2 and these three)
        for fd in (log, out_r, err_r):
            os.set_inheritable(fd, True)
        pid = os.posix_spawn(exe, ["minirun-monitor", "--tee", str(log), str(out_r),
                                   str(err_r)], os.environ)
    except BaseException:
        for fd in (out_w, err_w):
            os.close(fd)
        raise
    finally:
        for fd in (log, out_r, err_r):
            os.close(fd)
    return pid, out_w, err_w
