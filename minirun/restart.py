"""`minirun start` of an exited container, and `minirun restart`.

An exited container keeps its record, its writable layer (upper/) and its
config, but its network, cgroup and process were torn down when it exited
(lifecycle.finish). `start` makes them again through the same journaled steps
as `run` (a fresh journal: the old one was undone in full), under the same
name, preferring the address it had if that is still free, and hands the
container to a new monitor (detached.py), as `run -d` does. A start that fails
is rolled back and leaves the container exited, never removed.
"""
from __future__ import annotations

import shutil
import sys

from .errors import Conflict, MinirunError
from .lifecycle import finish, report
from .procs import proc_start_time
from .record import CREATING, STOPPED, Container
from .state import is_running, locked, lookup, reload, save


def start(paths, ref: str, firewall: str, auto: bool = False) -> Container | None:
    """Start an exited container. `auto`: a restart by its policy (after_exit), which
    is off (None) if the user stopped, started or removed it meanwhile."""
    import os
    from .state import owner_alive
    c = lookup(paths, ref)
    if c.paused:
        raise Conflict(f"container {c.name} is paused: unpause it instead")
    if c.state != STOPPED and not is_running(c) and not owner_alive(c):
        report(finish(c, c.exit_code))  # dead (its owner crashed): reclaim it first
    with locked(c) as exists:
        now = reload(c) if exists else None
        if now is None:
            raise Conflict(f"container {c.name} was removed")
        if auto:
            if not now.restarting or now.manually_stopped:
                if now.restarting:
                    now.restarting = False
                    save(now)
                return None
            now.restart_count += 1
        else:
            now.manually_stopped = False
            if not is_running(now):
                now.restart_count, now.restart_delay = 0, 0.0
        now.restarting = False
        if is_running(now):
            save(now)
            return now  # as Docker: starting a running container does nothing
        if now.state != STOPPED or not now.torn_down:
            raise Conflict(f"container {c.name} is being started or stopped: try again")
        old_ip = now.network.ip if now.network and now.network.driver == "bridge" else None
        me = os.getpid()
        now.state, now.journal, now.torn_down = CREATING, [], False
        now.pid = now.pid_start = now.exit_code = now.finished = None
        now.oom_killed = False
        now.owner_pid, now.owner_start = me, proc_start_time(me)
        now.network = None
        save(now)
    c = now
    try:
        driver = _prepare(c, firewall, old_ip)
    except BaseException:
        report(finish(c, None, remove=False))
        raise
    from .detached import run_detached
    with open(os.devnull, "w") as devnull:  # run_detached prints the id; start the name
        run_detached(c, driver, firewall, out=devnull, keep_record=True)
    return c


def _prepare(c: Container, firewall: str, old_ip: str | None):
    """What `run` makes before the fork: the cgroup, the network's address and ports,
    the /etc files. The old address first; if it is taken, any."""
    from .cgroups import create as create_cgroup
    from .network.plugin import get_driver
    from .runtime import write_etc
    from .teardown import teardown
    driver = get_driver(c.paths, c.config.network_mode, firewall)
    create_cgroup(c)
    wanted = c.config.requested_ip
    if old_ip and not wanted:
        c.config = c.config._replace(requested_ip=old_ip)
        try:
            driver.prepare(c)
        except MinirunError:
            # taken meanwhile: undo this try's steps (the cgroup stays), then any address
            net = [s for s in c.journal if s.kind.startswith("net.")]
            c.journal = [s for s in c.journal if not s.kind.startswith("net.")]
            partial = Container(c.paths, c.id, c.name, c.config, journal=net,
                                network=c.network)
            report(teardown(partial))
            c.config = c.config._replace(requested_ip=None)
            driver.prepare(c)
        finally:
            c.config = c.config._replace(requested_ip=None)
            save(c)
    else:
        driver.prepare(c)
    shutil.rmtree(c.dir / "etc", ignore_errors=True)
    write_etc(c, driver)
    return driver


def restart(paths, ref: str, firewall: str, timeout: float = 10) -> Container:
    from .lifecycle import stop
    c = lookup(paths, ref)
    if is_running(c):
        stop(paths, ref, timeout)
    return start(paths, ref, firewall)


def after_exit(paths, cid: str, firewall: str) -> None:
    """Called by the monitor (`_cleanup`) once an exited container is torn down: if its
    --restart policy says so, mark it restarting, wait the backoff, and start it again
    (this process is still its owner meanwhile; stop and rm -f call the restart off)."""
    import time
    from . import faults
    from .restartpolicy import next_delay, scaled, should_restart
    from .state import load
    c = load(paths, cid)
    if c is None or c.config.restart_policy == "no":
        return
    with locked(c) as exists:
        now = reload(c) if exists else None
        if now is None or now.state != STOPPED or not now.torn_down or now.restarting:
            return
        if not should_restart(now.config.restart_policy, now.config.restart_max,
                              now.exit_code, now.restart_count, now.manually_stopped):
            return
        ran = (now.finished - now.started) if now.finished and now.started else None
        now.restart_delay = next_delay(now.restart_delay, ran)
        now.restarting = True
        save(now)
    faults.point("restart.backoff")  # tests: MINIRUN_PAUSE_AT=restart.backoff=FILE
    time.sleep(scaled(now.restart_delay))
    try:
        start(paths, cid, firewall, auto=True)
    except MinirunError as e:
        print(f"minirun: restart of {c.name}: {e}", file=sys.stderr)
        gone = reload(c)
        if gone is not None and gone.restarting:
            with locked(gone):
                gone = reload(c)
                if gone is not None:
                    gone.restarting = False
                    save(gone)
