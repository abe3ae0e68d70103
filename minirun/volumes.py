"""Named volumes: directories under the state root that outlive containers (Docker's
"local" driver).

    ROOT/volumes/NAME/_data          what containers see (bind-mounted at the target)
    ROOT/volumes/NAME/volume.json    the record: name, creation time, labels, owner tag

A volume is made by `volume create` or on first use by `run -v NAME:/path`. `volume rm`
refuses one that a container (in any state, as Docker) names in its record. The check
and the removal happen under the lock; `run` makes a missing volume under the same lock
*after* its record exists, so a removal racing a run either sees the container or
finishes before the run makes the volume again.
Removal renames the directory first: a crash mid-removal leaves a temp directory that
`system prune` sweeps, never half a volume.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from . import fsutil
from .errors import Conflict, NotFound, UsageError
from .spec import VOLUME_NAME_RE


class VolumeStore:
    def __init__(self, paths):
        self.paths = paths
        self.dir = Path(paths.root) / "volumes"

    def _lock(self, shared: bool = False):
        self.dir.mkdir(parents=True, exist_ok=True)
        return fsutil.locked(self.dir / ".volumes.lock", shared=shared)

    @staticmethod
    def check_name(name: str) -> str:
        if not VOLUME_NAME_RE.match(name) or len(name) > 255:
            raise UsageError(f"invalid volume name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                             "are allowed, two characters at least")
        return name

    def data_dir(self, name: str) -> Path:
        return self.dir / name / "_data"

    def get(self, name: str) -> dict | None:
        if not VOLUME_NAME_RE.match(name):
            return None
        try:
            rec = fsutil.read_json(self.dir / name / "volume.json")
        except (OSError, ValueError):
            return None
        if not rec or rec.get("owner") != self.paths.owner_tag:
            return None
        return dict(rec, mountpoint=str(self.data_dir(name)))

    def lookup(self, name: str) -> dict:
        rec = self.get(name)
        if rec is None:
            raise NotFound(f"no such volume: {name}")
        return rec

    def all(self) -> list[dict]:
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []
        return [r for r in (self.get(n) for n in names) if r is not None]

    def create(self, name: str, labels: dict | None = None) -> dict:
        """Make the volume, or return it if it exists (Docker's `volume create` is
        idempotent)."""
        self.check_name(name)
        with self._lock():
            rec = self.get(name)
            if rec is not None:
                return rec
            if (self.dir / name).exists():
                raise Conflict(f"{self.dir / name} exists and is not a minirun volume")
            tmp = Path(fsutil_temp(self.dir, name))
            (tmp / "_data").mkdir(mode=0o755)
            fsutil.write_json(tmp / "volume.json", {
                "name": name, "created": time.time(), "labels": dict(labels or {}),
                "owner": self.paths.owner_tag})
            os.rename(tmp, self.dir / name)
        return self.lookup(name)

    def users(self, name: str) -> list:
        from .state import all_containers
        return [c for c in all_containers(self.paths)
                if any(v.name == name for v in c.config.volumes)]

    def in_use(self) -> set[str]:
        from .state import all_containers
        return {v.name for c in all_containers(self.paths) for v in c.config.volumes
                if v.name}

    def remove(self, name: str, force: bool = False) -> None:
        """Refused while a container names it (force too: Docker's -f only ignores a
        missing volume)."""
        with self._lock():
            if self.get(name) is None:
                if force:
                    return
                raise NotFound(f"no such volume: {name}")
            users = self.users(name)
            if users:
                raise Conflict(f"remove {name}: volume is in use - "
                               f"[{', '.join(c.id for c in users)}]")
            gone = fsutil_temp(self.dir, f"rm-{name}")
            os.rmdir(gone)
            os.rename(self.dir / name, gone)
        shutil.rmtree(gone, ignore_errors=True)

    def size(self, name: str) -> int:
        total = 0
        for top, dirs, files in os.walk(self.data_dir(name)):
            for f in files + dirs:
                try:
                    total += os.lstat(os.path.join(top, f)).st_blocks * 512
                except OSError:
                    pass
        return total

    def sweep(self) -> list[str]:
        """Temp directories of creates and removals whose process died."""
        from .procs import pid_alive
        removed = []
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return removed
        for n in names:
            m = fsutil.TEMP_RE.match(n)
            if m and not pid_alive(int(m.group(1))):
                shutil.rmtree(self.dir / n, ignore_errors=True)
                removed.append(f"volumes/{n}")
        return removed


def fsutil_temp(directory: Path, what: str) -> str:
    """A fresh directory named as fsutil's temp files (so sweeps recognise them)."""
    import tempfile
    directory.mkdir(parents=True, exist_ok=True)
    return tempfile.mkdtemp(prefix=f".{what}.", suffix=f".{os.getpid()}.tmp", dir=directory)


def resolve(paths, volumes) -> tuple:
    """-v NAME:/path and --mount type=volume: the source becomes the volume's directory
    (runextras.after_record makes a missing one once the container's record exists)."""
    store = VolumeStore(paths)
    out = []
    for v in volumes:
        if v.name:
            store.check_name(v.name)
            v = v._replace(source=str(store.data_dir(v.name)))
        out.append(v)
    return tuple(out)
