"""On-disk records of containers: where they live, how they are written, how they are found.

Persistent records live under the root (default /var/lib/minirun, or
$MINIRUN_ROOT / --root); volatile ones (locks, netns names) under the run root
(default /run/minirun, or $MINIRUN_RUNROOT / --runroot). A reboot wipes the
run root and every kernel object, not the records: a record whose process is
gone is reclaimed by the next minirun command.

Intent is recorded *before* each side effect (the veth name, the address, the
rules), so that a SIGKILL at any point leaves enough to undo everything.
"""
from __future__ import annotations

import os
import time
from typing import NamedTuple
from pathlib import Path
from typing import Any, Iterator

from . import fsutil
from .errors import Conflict, NotFound


class Paths(NamedTuple):
    root: Path
    runroot: Path

    @classmethod
    def from_env(cls, root: str | None = None, runroot: str | None = None) -> "Paths":
        return cls(Path(root or os.environ.get("MINIRUN_ROOT") or "/var/lib/minirun"),
                   Path(runroot or os.environ.get("MINIRUN_RUNROOT") or "/run/minirun"))

    @property
    def containers(self) -> Path:
        return self.root / "containers"

    @property
    def networks(self) -> Path:
        return self.root / "networks"

    @property
    def names(self) -> Path:
        return self.root / "names"

    @property
    def names_lock(self) -> Path:
        return self.runroot / "names.lock"

    def container_dir(self, cid: str) -> Path:
        return self.containers / cid


def new_id() -> str:
    return os.urandom(32).hex()


def _stat_fields(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2:].split()  # fields from 3 (state) on


def proc_start_time(pid: int) -> int | None:
    """Start time of a process in clock ticks: tells a live PID from a reused one."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def process_alive(pid: int | None, start: int | None) -> bool:
    """The process that had this PID and start time still runs (a zombie does not:
    its parent died, and whoever inherited it has not reaped it yet)."""
    if not pid:
        return False
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] not in (b"Z", b"X") and int(fields[19]) == start


class Container:
    """One container's record: a JSON file rewritten atomically on every change."""

    def __init__(self, paths: Paths, cid: str, data: dict[str, Any]):
        self.paths, self.id, self.data = paths, cid, data

    @property
    def dir(self) -> Path:
        return self.paths.container_dir(self.id)

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def record_path(self) -> Path:
        return self.dir / "state.json"

    @property
    def log_path(self) -> Path:
        return self.dir / "container.log"

    def save(self) -> None:
        fsutil.write_json(self.record_path, self.data)

    def update(self, **changes: Any) -> None:
        self.data.update(changes)
        self.save()

    def reload(self) -> "Container":
        self.data = fsutil.read_json(self.record_path, self.data)
        return self

    @property
    def pid(self) -> int | None:
        return self.data.get("pid")

    def is_running(self) -> bool:
        if self.data.get("status") not in ("running", "creating"):
            return False
        return process_alive(self.data.get("pid"), self.data.get("pid_start"))

    def status(self) -> str:
        st = self.data.get("status", "unknown")
        if st in ("running", "creating") and not self.is_running():
            # The process is gone but nobody recorded its end (crash, SIGKILL, reboot).
            return "dead"
        return st

    def short_id(self) -> str:
        return self.id[:12]


def create_record(paths: Paths, name: str | None, data: dict[str, Any]) -> Container:
    """Reserve a unique name and write the first record, under the names lock.

    Names are indexed by one small file each (names/NAME holds the id), so
    checking and resolving a name costs the same with 1 or 1000 containers.
    """
    cid = new_id()
    with fsutil.locked(paths.names_lock):
        if name is None:
            name = _generated_name(paths, cid)
        if find_by_name(paths, name) is not None:
            raise Conflict(f"container name {name!r} is already in use")
        data = dict(data, id=cid, name=name, created=time.time(), status="creating")
        c = Container(paths, cid, data)
        c.dir.mkdir(parents=True, exist_ok=False)
        c.save()
        fsutil.atomic_write(paths.names / name, cid + "\n")
    return c


def delete_record(c: Container) -> None:
    """Remove a container's record, its layer and its name."""
    import shutil  # only on teardown: keeps it off the start path
    with fsutil.locked(c.paths.names_lock):
        try:
            if (c.paths.names / c.name).read_text().strip() == c.id:
                (c.paths.names / c.name).unlink()
        except FileNotFoundError:
            pass
        shutil.rmtree(c.dir, ignore_errors=True)


def _generated_name(paths: Paths, cid: str) -> str:
    return f"c-{cid[:10]}"


def _load(paths: Paths, cid: str) -> Container | None:
    data = fsutil.read_json(paths.container_dir(cid) / "state.json")
    return Container(paths, cid, data) if data is not None else None


def all_containers(paths: Paths) -> Iterator[Container]:
    try:
        entries = sorted(os.scandir(paths.containers), key=lambda e: e.name)
    except FileNotFoundError:
        return
    for e in entries:
        data = fsutil.read_json(Path(e.path) / "state.json")
        if data is not None:
            yield Container(paths, e.name, data)


def find_by_name(paths: Paths, name: str) -> Container | None:
    try:
        cid = (paths.names / name).read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    c = _load(paths, cid) if cid and "/" not in cid else None
    return c if c is not None and c.name == name else None  # a stale entry is no name


def lookup(paths: Paths, ref: str) -> Container:
    """A container by name, full id, or unique id prefix (as Docker accepts)."""
    if "/" not in ref and ref not in (".", ".."):
        c = find_by_name(paths, ref) or (_load(paths, ref) if len(ref) == 64 else None)
        if c is not None:
            return c
    matches = [c for c in all_containers(paths) if len(ref) >= 3 and c.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise Conflict(f"container id prefix {ref!r} is ambiguous")
    raise NotFound(f"no such container: {ref}")
