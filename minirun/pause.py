"""`minirun pause` / `unpause`: stop every process of a container with the cgroup freezer.

The record's `paused` flag is written *before* the cgroup is frozen and cleared
*after* it is thawed, so whoever signals or tears the container down (stop,
kill, rm -f, the teardown) knows to thaw it first: a frozen task handles no
signal, not even SIGKILL. cgroup v1's freezer controller writes
freezer.state; v2 writes cgroup.freeze (cgroups/v1.py, v2.py).
"""
from __future__ import annotations

from .cgroups import freeze
from .errors import Conflict
from .record import Container
from .state import is_running, locked, lookup, reload, save


def pause(paths, ref: str) -> Container:
    c = lookup(paths, ref)
    with locked(c) as exists:
        now = reload(c) if exists else None
        if now is None or not is_running(now):
            raise Conflict(f"container {c.name} is not running")
        if now.paused:
            raise Conflict(f"container {c.name} is already paused")
        now.paused = True
        save(now)
        try:
            freeze(now, True)
        except BaseException:
            now.paused = False
            save(now)
            raise
        return now


def unpause(paths, ref: str) -> Container:
    c = lookup(paths, ref)
    with locked(c) as exists:
        now = reload(c) if exists else None
        if now is None or not is_running(now) or not now.paused:
            raise Conflict(f"container {c.name} is not paused")
        freeze(now, False)
        now.paused = False
        save(now)
        return now


def unpause_record(c: Container) -> None:
    """Thaw before a signal (stop, kill, rm -f), and record it. Takes the lock, so it is
    never called under it."""
    with locked(c) as exists:
        now = reload(c) if exists else None
        if now is None or not now.paused:
            return
        from .cgroups import thaw
        thaw(now)
        now.paused = False
        save(now)
    c.paused = False
