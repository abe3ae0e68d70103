"""One teardown for every exit path: start rollback, foreground exit, the monitor's
cleanup, `rm`, `rm -f`, reclaim after a crash and `system prune` all call `teardown()`.

It first makes sure PID 1 is gone (a pidfd and the recorded start time, so a
recycled PID is never hit), then walks the journal (journal.py) backwards.
The steps of one layer (`net.*`: firewall, veth, namespace name, bridge, host
ports, address) are handed to that layer together, newest first, when the walk
reaches the newest of them, so it can overlap its kernel waits; each undo checks the object's token and leaves
alone anything that is not provably ours. Every undo is idempotent; failures
are collected, never stop the walk, and come back as (operation, object,
reason).
"""
from __future__ import annotations

import signal
from collections.abc import Callable, Iterable

from . import oplog
from .failures import Failure
from .record import Container, Step


# layer prefix -> undo(container, its steps, newest first) -> failures
Undo = Callable[[Container, list[Step]], list[Failure]]


def _undo_network(c: Container, steps: list[Step]) -> list[Failure]:
    from .network.plugin import driver_of
    return driver_of(c).undo(c, steps)


def _undo_cgroup(c: Container, steps: list[Step]) -> list[Failure]:
    from .cgroups import undo
    return undo(c, steps)


def _undo_dns(c: Container, steps: list[Step]) -> list[Failure]:
    from .network.aardvark import undo
    return undo(c, steps)


def _undo_connect(c: Container, steps: list[Step]) -> list[Failure]:
    from .network.connect import undo
    return undo(c, steps)


UNDO: dict[str, Undo] = {"net": _undo_network, "cg": _undo_cgroup, "dns": _undo_dns,
                         "conn": _undo_connect}


def _groups(journal: Iterable[Step]) -> list[tuple[str, list[Step]]]:
    """The steps of each layer together, layers in the order their newest step was made
    (the journal is given newest first): a layer undoes all its steps in one call."""
    out: dict[str, list[Step]] = {}
    for s in journal:
        out.setdefault(s.kind.split(".", 1)[0], []).append(s)
    return list(out.items())


def teardown(c: Container) -> list[Failure]:
    """Undo everything the journal says was (or was about to be) made for `c`."""
    from .faults import phase
    if c.paused:  # frozen tasks would not even die of SIGKILL
        from .cgroups import thaw
        thaw(c)
    failures = stop_process(c)
    for layer, steps in _groups(reversed(c.journal)):
        undo = UNDO.get(layer)
        if undo is None:
            failures.append(Failure("undo", steps[0].kind, "unknown kind of step"))
            continue
        failures += undo(c, steps)
        phase(f"undone: {layer}")
    return failures


def stop_process(c: Container, timeout: float = 10) -> list[Failure]:
    """SIGKILL the container's PID 1 if it still runs, and wait until it is gone."""
    from .procs import process_alive, signal_container, wait_gone
    if not process_alive(c.pid, c.pid_start):
        return []
    oplog.record(f"kill -KILL {c.pid}", why="the container's PID 1 (and with it every "
                 "process of its PID namespace)")
    signal_container(c, signal.SIGKILL)
    if not wait_gone(c, timeout):
        return [Failure("kill", f"PID {c.pid}", "still running after SIGKILL")]
    return []
