"""Host-port reservations: one file per published host port, created with O_EXCL.

Two containers can never publish the same host port and protocol, even when
started at the same instant: the second `open(O_EXCL)` fails. A reservation
whose owner is no longer running is taken over (the owner crashed before
teardown). Reservations are per (protocol, port), whatever the host IP.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from collections.abc import Callable

from .. import faults, fsutil
from ..errors import Conflict


class PortReservations:
    def __init__(self, directory: Path):
        self.dir = directory

    def _path(self, proto: str, port: int) -> Path:
        return self.dir / f"{proto}-{port}"

    def owner(self, proto: str, port: int) -> str | None:
        try:
            data = fsutil.read_json(self._path(proto, port))
        except ValueError:  # written before the content: see reserve()
            return None
        return data.get("owner") if isinstance(data, dict) else None

    def reserve(self, owner: str, proto: str, port: int,
                is_alive: Callable[[str], bool]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self._path(proto, port)
        with fsutil.locked(self.dir / "lock"):
            current = self.owner(proto, port)
            if current and current != owner:
                if is_alive(current):
                    raise Conflict(f"host port {port}/{proto} is already published by "
                                   f"container {current[:12]}")
                path.unlink(missing_ok=True)
            elif current == owner:
                return
            elif path.exists():
                # no readable owner: a reservation of an older minirun killed between
                # creating the file and writing it (we hold the lock: nobody is writing)
                path.unlink()
            # The content is written whole first, then linked into place: link() fails
            # if the name exists (O_EXCL's guarantee), and a reader never sees it empty.
            tmp = self.dir / f".{path.name}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps({"owner": owner}))
            faults.point("write", path)
            os.link(tmp, path)
            tmp.unlink()

    def release(self, owner: str, proto: str, port: int) -> None:
        """Idempotent; never frees another container's reservation."""
        if self.owner(proto, port) == owner:
            self._path(proto, port).unlink(missing_ok=True)

    def sweep_unreadable(self) -> list[str]:
        """Remove reservations without a readable owner (see reserve); returns them."""
        removed = []
        if not self.dir.exists():
            return removed
        with fsutil.locked(self.dir / "lock"):
            for p in self.dir.iterdir():
                proto, _, port = p.name.partition("-")
                if not p.name.startswith(".") and port.isdigit() and \
                        self.owner(proto, int(port)) is None:
                    p.unlink(missing_ok=True)
                    removed.append(p.name)
        return removed

    def taken(self) -> set[int]:
        if not self.dir.exists():
            return set()
        return {int(p.name.split("-")[1]) for p in self.dir.iterdir()
                if "-" in p.name and p.name.split("-")[1].isdigit()}
