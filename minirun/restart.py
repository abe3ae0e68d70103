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


def start(paths, ref: str, firewall: str, out=sys.stdout) -> Container:
    import os
    c = lookup(paths, ref)
    if c.paused:
        raise Conflict(f"container {c.name} is paused: unpause it instead")
    with locked(c) as exists:
        now = reload(c) if exists else None
        if now is None:
            raise Conflict(f"container {c.name} was removed")
        if is_running(now):
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
    run_detached(c, driver, firewall, out=open(os.devnull, "w"), keep_record=True)
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
