"""Small file-system primitives shared by every on-disk record: atomic writes and locks."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from pathlib import Path
from collections.abc import Iterator
TYPE_CHECKING = False  # typing costs ~3 ms of every start: for annotations only
if TYPE_CHECKING:
    from typing import Any

from . import faults


TEMP_RE = re.compile(r"^\..+\.(\d+)\.tmp$")


def sha256(data: bytes):
    """hashlib.sha256 without loading OpenSSL: `hashlib` costs ~3 ms of every start here, the
    built-in implementation it falls back on costs nothing."""
    try:
        from _sha256 import sha256 as impl  # CPython <= 3.11
    except ImportError:
        try:
            from _sha2 import sha256 as impl  # CPython >= 3.12
        except ImportError:
            from hashlib import sha256 as impl
    return impl(data)


def sha256_hex(text: str) -> str:
    return sha256(text.encode()).hexdigest()


def atomic_write(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Write `path` so readers see the old or the new content, never half of it.

    The temporary file is `.NAME.PID.tmp`: readers never look at dot-files, and
    `sweep_temp` removes those whose process is gone (a SIGKILL between the
    write and the rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, raw)
    finally:
        os.close(fd)
    faults.point("write", path)
    os.replace(tmp, path)


def sweep_temp(root: Path, containers: bool = True) -> list[str]:
    """Remove the temporary files of atomic writes whose writer died, in the state root's
    own directories (never inside a container's layer); `containers` False: not in the
    containers' directories (state.sweep does those from the listing it has)."""
    from .procs import pid_alive
    root = Path(root)
    dirs = [root, root / "names", root / "ports", root / "networks"]
    dirs += [p for p in (root / "networks").glob("*/ipam")]
    if containers:
        dirs += [p for p in (root / "containers").glob("*") if not p.name.startswith(".")]
    removed = []
    for d in dirs:
        try:
            entries = os.listdir(d)
        except OSError:
            continue
        for name in entries:
            m = TEMP_RE.match(name)
            if m and not pid_alive(int(m.group(1))):
                try:
                    os.unlink(d / name)
                    removed.append(str((d / name).relative_to(root)))
                except OSError:
                    pass
    return removed


def write_json(path: Path, obj: Any) -> None:
    # compact: records are rewritten at every step of a start (`inspect` pretty-prints)
    atomic_write(path, json.dumps(obj, separators=(",", ":")) + "\n")


def read_json(path: Path, default: Any = None) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default


def read_text(path: Path, default: str | None = None) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return default


@contextlib.contextmanager
def locked(path: Path, shared: bool = False) -> Iterator[None]:
    """Hold an flock on `path` (created if missing) for the duration of the block.

    flock locks vanish with the process that holds them, so a SIGKILLed minirun
    never leaves a lock behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def boot_id() -> str:
    """Changes at every reboot: leases recorded under another boot are stale."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def remove_tree(path) -> None:
    """`shutil.rmtree(path, ignore_errors=True)` without importing shutil (~3 ms with the
    compression modules it loads, on every `run --rm`). Bottom-up over directory fds: a
    symlink is removed, never followed."""
    try:
        _remove_below(path)
    except OSError:  # the top itself is gone or unreadable
        pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def _remove_below(path) -> None:
    for _dir, dirs, files, dfd in os.fwalk(path, topdown=False):  # errors below: skipped
        for name in files:
            try:
                os.unlink(name, dir_fd=dfd)
            except OSError:
                pass
        for name in dirs:
            try:
                os.rmdir(name, dir_fd=dfd)
            except OSError:  # a symlink to a directory is listed here too
                try:
                    os.unlink(name, dir_fd=dfd)
                except OSError:
                    pass
