"""On-disk records of containers: where they live, how they are written, how they are found.

Persistent records live under the root (default /var/lib/minirun, or
$MINIRUN_ROOT / --root); volatile ones (locks, netns names) under the run root
(default /run/minirun, or $MINIRUN_RUNROOT / --runroot). A reboot wipes the
run root and every kernel object, not the records: a record whose process is
gone is reclaimed by the next minirun command.

Layout of the root:

    containers/<id>/state.json   the record (record.py), rewritten atomically
    containers/<id>/...          the writable layer, /etc files, the log
    names/<name>                 the id of the container that has the name
    containers/.new-<pid>-<id>   a record being created (renamed into place whole)
    containers/.gone-<pid>-<id>  a record being removed (renamed away first)

A record appears and disappears with one rename, so a SIGKILL at any point
leaves either a whole record or a dot-directory that `sweep()` removes once
the process named in it is gone. A container's lock is an flock on its own
directory: it goes with the directory, nothing is left in the run root.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from collections.abc import Iterator
from .tuples import NamedTuple

from . import fsutil
from .fsutil import sha256_hex  # noqa: F401 (re-exported)
from .errors import Conflict, NotFound
from .procs import pid_alive, proc_start_time, process_alive  # noqa: F401 (re-exported)
from .record import CREATING, Config, Container


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

    @property
    def owner_tag(self) -> str:
        """Short tag of this state root, carried by every host-wide object it makes
        (firewall elements and rules, bridge MACs) so roots never undo each other's."""
        return sha256_hex(str(self.root.resolve()))[:8]

    def container_dir(self, cid: str) -> Path:
        return self.containers / cid




def new_id() -> str:
    return os.urandom(32).hex()


# -- one record ---------------------------------------------------------------

def save(c: Container) -> None:
    fsutil.write_json(c.record_path, c.to_json())


def load(paths: Paths, cid: str) -> Container | None:
    return _load(paths, os.path.join(paths.containers, cid, "state.json"))


def _load(paths: Paths, record: str) -> Container | None:
    """The record at path `record` (a str: ps reads 1000 of them, pathlib's objects cost
    more than the read)."""
    try:
        with open(record, "rb") as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        data = None
    except ValueError:  # not ours to read (a record of an older minirun): invisible
        return None
    if data is None:
        return None
    try:
        return Container.from_json(paths, data)
    except (ValueError, KeyError, TypeError):
        return None


def reload(c: Container) -> Container | None:
    """The record as it is on disk now (None: it was removed)."""
    return load(c.paths, c.id)


@contextlib.contextmanager
def locked(c: Container) -> Iterator[bool]:
    """Hold the container's lock (an flock on its directory). Yields False when the
    directory is gone: whoever held the lock before us removed the container."""
    try:
        fd = os.open(c.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield c.record_path.exists()
    finally:
        os.close(fd)


def is_running(c: Container) -> bool:
    return c.state in (CREATING, "created", "running") and process_alive(c.pid, c.pid_start)


def owner_alive(c: Container) -> bool:
    """The process responsible for the container (`minirun run`, or its monitor)."""
    return process_alive(c.owner_pid, c.owner_start)


def docker_status(c: Container) -> str:
    """Docker's word for the state: created, running, paused, exited, dead."""
    if c.state == "stopped":
        return "restarting" if c.restarting else "exited"  # restarting: --restart's wait
    if c.state == "running":
        if not process_alive(c.pid, c.pid_start):
            return "dead"
        return "paused" if c.paused else "running"
    # creating / created: a start in progress, or one whose owner died (reclaimable)
    return "created" if owner_alive(c) or is_running(c) else "dead"


# -- creation and removal -------------------------------------------------------

def create_record(paths: Paths, name: str | None, config: Config) -> Container:
    """Reserve a unique name and write the first record, under the names lock.

    Names are indexed by one small file each (names/NAME holds the id), so
    checking and resolving a name costs the same with 1 or 1000 containers.
    The record is written in a dot-directory and renamed into place.
    """
    cid = new_id()
    with fsutil.locked(paths.names_lock):
        if name is None:
            name = f"c-{cid[:10]}"
        if find_by_name(paths, name) is not None:
            raise Conflict(f"container name {name!r} is already in use")
        me = os.getpid()
        c = Container(paths, cid, name, config, created=time.time(), state=CREATING,
                      owner_pid=me, owner_start=proc_start_time(me))
        paths.containers.mkdir(parents=True, exist_ok=True)
        staging = paths.containers / f".new-{me}-{cid}"
        staging.mkdir(mode=0o711)
        fsutil.write_json(staging / "state.json", c.to_json())
        os.rename(staging, c.dir)
        fsutil.atomic_write(paths.names / name, cid + "\n")
    return c


def delete_record(c: Container) -> None:
    """Remove a container's name and record (with its layer); the record vanishes at once."""
    with fsutil.locked(c.paths.names_lock):
        try:
            if (c.paths.names / c.name).read_text().strip() == c.id:
                (c.paths.names / c.name).unlink()
        except FileNotFoundError:
            pass
        gone = c.paths.containers / f".gone-{os.getpid()}-{c.id}"
        try:
            os.rename(c.dir, gone)
        except FileNotFoundError:
            return
    fsutil.remove_tree(gone)


def sweep(paths: Paths, known: dict | None = None) -> list[str]:
    """Remove what a SIGKILLed minirun left half-made: staging and removal directories and
    temporary files whose process is gone, container directories without a record, and
    name entries that point nowhere. Returns what was removed. `known`: records just
    read (id -> Container), used instead of reading them again; an id not in it is read
    (it may have been created since)."""
    import shutil
    removed = []
    try:
        entries = list(os.scandir(paths.containers))
    except FileNotFoundError:
        entries = []
    for e in entries:
        if e.name.startswith((".new-", ".gone-")):
            pid = e.name.split("-")[1]
            if pid.isdigit() and not pid_alive(int(pid)):
                shutil.rmtree(e.path, ignore_errors=True)
                removed.append(e.name)
        elif not e.name.startswith(".") and e.name not in (known or ()) \
                and not os.path.exists(os.path.join(e.path, "state.json")):
            # A record is renamed into place whole: a directory without one was being
            # removed by a process that died, or predates this layout.
            shutil.rmtree(e.path, ignore_errors=True)
            removed.append(e.name)
        elif not e.name.startswith("."):
            removed += _sweep_temp_in(paths, e.name)
    removed += (fsutil.sweep_temp(paths.root, containers=False)
                + fsutil.sweep_temp(paths.runroot))
    with fsutil.locked(paths.names_lock):
        try:
            names = list(os.scandir(paths.names))
        except FileNotFoundError:
            names = []
        for e in names:
            if e.name.startswith("."):
                continue
            cid = _read_small(e.path).strip()
            c = None
            if cid and "/" not in cid:
                c = (known or {}).get(cid)
                if c is None or c.name != e.name:  # created or renamed since: read it now
                    c = load(paths, cid)
            if c is None or c.name != e.name:
                os.unlink(e.path)
                removed.append(f"names/{e.name}")
    return removed


def _sweep_temp_in(paths: Paths, cid: str) -> list[str]:
    """fsutil.sweep_temp in one container's directory (its record's temporary files),
    with plain strings: ps does this for every container."""
    d = f"{paths.containers}/{cid}"
    try:
        names = os.listdir(d)
    except OSError:
        return []
    removed = []
    for name in names:
        m = fsutil.TEMP_RE.match(name) if name[:1] == "." else None
        if m and not pid_alive(int(m.group(1))):
            try:
                os.unlink(f"{d}/{name}")
                removed.append(f"containers/{cid}/{name}")
            except OSError:
                pass
    return removed


def _read_small(path: str) -> str:
    """A small file's text ("" if it is gone): one open and read, no file object."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return ""
    try:
        return os.read(fd, 4096).decode(errors="replace")
    finally:
        os.close(fd)


# -- finding ----------------------------------------------------------------------

def all_containers(paths: Paths) -> Iterator[Container]:
    try:
        entries = sorted(e.name for e in os.scandir(paths.containers)
                         if not e.name.startswith("."))
    except FileNotFoundError:
        return
    base = str(paths.containers)
    for cid in entries:
        c = _load(paths, f"{base}/{cid}/state.json")
        if c is not None:
            yield c


def find_by_name(paths: Paths, name: str) -> Container | None:
    try:
        cid = (paths.names / name).read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    c = load(paths, cid) if cid and "/" not in cid and not cid.startswith(".") else None
    return c if c is not None and c.name == name else None  # a stale entry is no name


def lookup(paths: Paths, ref: str) -> Container:
    """A container by name, full id, or unique id prefix (as Docker accepts)."""
    if "/" not in ref and not ref.startswith("."):
        c = find_by_name(paths, ref) or (load(paths, ref) if len(ref) == 64 else None)
        if c is not None:
            return c
    matches = [c for c in all_containers(paths) if len(ref) >= 3 and c.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise Conflict(f"container id prefix {ref!r} is ambiguous")
    raise NotFound(f"no such container: {ref}")
