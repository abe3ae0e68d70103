"""The lifecycle verbs on recorded containers: finish, kill, stop, remove, reclaim.

Every path that ends a container goes through `finish()`, which records the
exit and calls the one teardown (teardown.py) under the container's lock:
whoever takes the lock first (the foreground `run`, the monitor of a
detached container, `rm`, reclaim) does the work, the others find it done.
"""
from __future__ import annotations

import os
import signal
import sys
import time

from . import oplog
from .errors import Conflict, MinirunError, TeardownError
from .record import RUNNING, STOPPED, Container
from .procs import process_alive, signal_container, wait_gone
from .state import (Paths, all_containers, delete_record, is_running, locked,
                    load, lookup, owner_alive, reload, save, sweep)
from .failures import Failure
from .teardown import teardown


def finish(c: Container, code: int | None, remove: bool | None = None,
           force: bool = False) -> list[Failure]:
    """The container has exited (or never started): record its code, undo everything,
    remove the record if asked (`remove`, else its --rm). Returns the failures; with
    `force` the record goes even then (they are reported, and `system prune` sweeps
    what they left)."""
    with locked(c) as exists:
        if not exists:
            return []
        c = reload(c)
        if c is None:
            return []
        if c.state != STOPPED:
            c.state, c.exit_code, c.finished = STOPPED, code, time.time()
            c.paused = False
            if not c.torn_down and code is not None:
                from .cgroups import oom_killed
                c.oom_killed = oom_killed(c)  # its counter, before the cgroup goes
            save(c)
        failures = [] if c.torn_down else teardown(c)
        if not failures and not c.torn_down:
            c.torn_down = True
        if (c.config.remove if remove is None else remove) and (force or not failures):
            delete_record(c)
        else:
            save(c)
        return failures


def report(failures: list[Failure], what: str = "teardown") -> None:
    for f in failures:
        print(f"minirun: {what}: {f}", file=sys.stderr)


def _signal(c: Container, sig: int, why: str) -> None:
    """Send `sig` to the container's PID 1, and say so in the operation log. A paused
    container is thawed first (as Docker does): a frozen task handles no signal, not
    even SIGKILL."""
    if c.paused:
        from .pause import unpause_record
        unpause_record(c)
    try:
        name = signal.Signals(sig).name[3:]
    except ValueError:  # a real-time signal without a name of its own (--stop-signal)
        name = str(sig)
    oplog.record(f"kill -{name} {c.pid}", why=why)
    signal_container(c, sig)


def _watch_monitor(c: Container) -> int | None:
    """Where the container's explain.log ends now: what its monitor appends from here on
    (the teardown after PID 1 exits) is shown too, with --explain."""
    return oplog.size_of(c.explain_path) if oplog.listening() else None


def _show_monitor(c: Container, offset: int | None) -> None:
    if offset is not None:
        oplog.replay_from(c.explain_path, offset)


def stopped_by_user(c: Container) -> None:
    """stop, kill (TERM, INT, KILL) and rm -f: a --restart container stays stopped (until
    `start`), and one waiting for its restart is not restarted."""
    if c.config.restart_policy == "no":
        return
    with locked(c) as exists:
        now = reload(c) if exists else None
        if now is not None:
            now.manually_stopped, now.restarting = True, False
            save(now)
    c.manually_stopped, c.restarting = True, False


def kill(paths: Paths, ref: str, sig: int = signal.SIGKILL) -> Container:
    c = lookup(paths, ref)
    if not is_running(c):
        raise Conflict(f"container {c.name} is not running")
    if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
        stopped_by_user(c)
    _signal(c, sig, "the signal, to the container's PID 1")
    return c


def stop(paths: Paths, ref: str, timeout: float | None = None) -> Container:
    """The container's --stop-signal [SIGTERM], then SIGKILL after `timeout` seconds
    [its --stop-timeout, else 10; -1: no limit]."""
    c = lookup(paths, ref)
    stopped_by_user(c)
    offset = _watch_monitor(c)
    if timeout is None:
        timeout = c.config.stop_timeout if c.config.stop_timeout is not None else 10
    if is_running(c):
        sig = c.config.stop_signal or signal.SIGTERM
        _signal(c, sig, "ask the container's PID 1 to stop" + (
            "" if sig == signal.SIGTERM else " (its --stop-signal)"))
        if not wait_gone(c, None if timeout < 0 else timeout):
            _signal(c, signal.SIGKILL, f"still running after {timeout:g} s: PID 1 (and with "
                    "it every process of its PID namespace) is killed")
            wait_gone(c, 10)
    failures = _wait_teardown(c)
    _show_monitor(c, offset)
    if failures:
        raise TeardownError([str(f) for f in failures])
    return c


def _wait_teardown(c: Container, timeout: float = 15) -> list[Failure]:
    """The owner (run or monitor) tears down after the exit; wait for it, or do it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = reload(c)
        if now is None or (now.state == STOPPED and now.torn_down):
            return []
        if not owner_alive(now):
            break
        time.sleep(0.01)
    now = reload(c)
    return finish(now, now.exit_code) if now is not None else []


def remove(paths: Paths, ref: str, force: bool = False) -> Container:
    c = lookup(paths, ref)
    offset = _watch_monitor(c)
    if is_running(c) or c.restarting:
        if not force:
            raise Conflict(f"container {c.name} is running: stop it first or use rm -f")
        stopped_by_user(c)
        if offset is None:
            _dismiss_monitor(c)
        _signal(c, signal.SIGKILL, "rm -f: the container's PID 1 (and with it every process "
                "of its PID namespace) is killed")
        wait_gone(c, 10)
    if offset is not None:
        # --explain: if the monitor tears down, show what it wrote to explain.log before
        # the record (and the file) goes
        if c.state != STOPPED and owner_alive(c):
            _wait_teardown(c)
        _show_monitor(c, offset)
    if c.state in ("creating", "created") and owner_alive(c):
        # A start in progress: its owner is still making things for it. Kill PID 1 (again,
        # if it was forked meanwhile) until the owner has rolled the start back, so that
        # nothing is made after our teardown.
        now = _stop_a_start(c)
        if now is None:
            return c  # the owner's rollback removed it
        c = now
    # No waiting for the owner of a running container (the monitor execs a whole Python
    # to tear down): whoever takes the container's lock first does it.
    failures = finish(c, c.exit_code, remove=True, force=force)
    if failures and not force:
        raise TeardownError([str(f) for f in failures])
    report(failures, f"rm {c.name}")
    return c


RM_WORKERS = 8  # kernel waits (RCU) overlap; more threads only contend for the GIL


def remove_many(paths: Paths, refs: list[str], force: bool = False):
    """`rm` of several containers: removed side by side (each teardown mostly waits for
    the kernel), results -- the container, or the MinirunError -- yielded in the order
    of `refs`. One at a time with --explain, so its commands stay in order."""
    def one(ref):
        try:
            return remove(paths, ref, force)
        except MinirunError as e:
            return e
    if len(refs) < 2 or oplog.listening():
        for ref in refs:
            yield one(ref)
        return
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(min(RM_WORKERS, len(refs))) as pool:
        yield from pool.map(one, refs)


def _dismiss_monitor(c: Container) -> None:
    """rm -f of a detached container: SIGKILL its monitor before PID 1, and tear down here.

    Otherwise the monitor execs a whole `minirun _cleanup` when PID 1 dies, only to find
    the teardown done (or to race us for it): ~60 ms of CPU per container, most of the
    cost of `rm -f` of many. The monitor is provably ours (its PID and start time are in
    the record, it wrote them) and holds nothing else. A crash of ours from here on
    leaves a record whose owner is gone: reclaim finishes it. Not for a foreground
    container: its owner is the user's own `minirun run`, which reports the exit."""
    if not c.config.detach or c.state != RUNNING or c.owner_pid in (None, os.getpid()):
        return
    if owner_alive(c):
        from .procs import signal_process
        signal_process(c.owner_pid, c.owner_start, signal.SIGKILL)


def _stop_a_start(c: Container, timeout: float = 15) -> Container | None:
    """SIGKILL the PID 1 of a start in progress until its owner rolls the start back or
    dies; the record as it is then (None: removed by the owner's rollback)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = reload(c)
        if now is None:
            return None
        if now.state == STOPPED or not owner_alive(now):
            return now
        if process_alive(now.pid, now.pid_start):
            signal_container(now, signal.SIGKILL)
        time.sleep(0.01)
    return reload(c)


def reclaim(paths: Paths, listing: list | None = None) -> list[str]:
    """Finish every container whose process and owner are gone (crash, SIGKILL, reboot):
    a start that never completed is rolled back and its record removed; a container
    that ran is recorded as exited. Also sweeps half-written files. Returns the names
    reclaimed; `listing`, if given, receives every container as it is afterwards, so
    `ps` reads each record once, not three times (a few ms per hundred containers)."""
    done = []
    known = {c.id: c for c in all_containers(paths)}
    sweep(paths, known)
    for c in known.values():
        if owner_alive(c) or (c.state == STOPPED and c.torn_down):
            continue
        if c.state in ("creating", "created"):
            report(finish(c, None, remove=True, force=True), f"reclaim {c.name}")
        elif c.state == STOPPED or not process_alive(c.pid, c.pid_start):
            report(finish(c, c.exit_code), f"reclaim {c.name}")
        else:
            continue
        done.append(c.name)
        known[c.id] = None  # changed: read again below
    if listing is not None:
        for cid, c in known.items():
            c = c if c is not None else load(paths, cid)
            if c is not None:
                listing.append(c)
    return done


def prune_orphans(paths: Paths) -> list[str]:
    """Sweep network objects and cgroups that no record accounts for (see
    network/reclaim.py and cgroups/__init__.py)."""
    from .cgroups import prune
    from .network import aardvark
    from .network.reclaim import reclaim_orphans
    live = {c.id for c in all_containers(paths)
            if not (c.state == STOPPED and c.torn_down)}
    return aardvark.prune(paths, live) + reclaim_orphans(paths, live) + prune(paths, live)


def explain_teardown(c: Container, code: int) -> None:
    """The monitor's teardown, when the container's command exits by itself, goes into
    the container's explain.log (always: nobody is there to pass --explain), for
    `minirun logs --explain NAME`."""
    from . import oplog
    oplog.log_to(c.explain_path, oplog.comment(
        f"{time.strftime('%Y-%m-%d %H:%M:%S %z')} the command of container {c.name} exited"
        + (f" with code {code}" if code is not None and code >= 0 else "")
        + ": its monitor tears down"))
