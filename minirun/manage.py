"""`minirun wait` and `minirun rename`: verbs on a container's record that start nothing.

wait:   blocks on PID 1's pidfd, then until the owner (run, or the monitor of a
        detached container) has recorded the exit; an exited container answers
        at once with its recorded code, as Docker's does. If the owner died, the
        waiter finishes the container itself (lifecycle._wait_teardown).
rename: the name index (names/NAME -> id) and the record change under the
        container's lock and then the names lock (the order finish/delete_record
        take them in), so a name is never held twice nor lost. A running
        container's network namespace is named after it (`ip netns`): the new
        name is attached (a journal step) before the old one goes. CNI
        containers keep the name their plugins were given until they stop.
"""
from __future__ import annotations

import select
import time

from . import fsutil
from . import kernel as k
from .errors import Conflict, MinirunError, NotFound, UsageError
from .record import STOPPED, Container
from .state import find_by_name, locked, lookup, reload, save


def wait(paths, ref: str) -> int:
    """Block until the container has exited; its exit code (-1 if none was recorded:
    it never ran, or its exit status was lost in a crash)."""
    from .lifecycle import _wait_teardown
    c = lookup(paths, ref)
    while True:
        now = reload(c)
        if now is None:
            raise NotFound(f"container {c.name} was removed before its exit was recorded")
        if now.state == STOPPED:
            return -1 if now.exit_code is None else now.exit_code
        if now.pid:
            _block_on(now)
        if now.state in ("creating", "created") and now.pid is None:
            time.sleep(0.02)  # a start in progress: PID 1 is not there yet
            continue
        now = reload(c)
        if now is not None and now.state != STOPPED:
            from .procs import process_alive
            if not process_alive(now.pid, now.pid_start):
                _wait_teardown(now)  # its owner records the exit (or we do, if it died)


def _block_on(c: Container) -> None:
    """Until PID 1 has exited (a pidfd polls readable then)."""
    from .procs import process_alive
    try:
        fd = k.kernel.pidfd_open(c.pid)
    except MinirunError:
        return
    try:
        while process_alive(c.pid, c.pid_start):
            select.select([fd], [], [], 1.0)
    finally:
        import os
        os.close(fd)


def rename(paths, ref: str, new: str) -> Container:
    from .spec import check_name
    check_name(new)
    c = lookup(paths, ref)
    if c.name == new:
        raise UsageError(f"container {c.name} already has the name {new!r}")
    with locked(c) as exists:
        now = reload(c) if exists else None
        if now is None:
            raise NotFound(f"no such container: {ref}")
        with fsutil.locked(paths.names_lock):
            if find_by_name(paths, new) is not None:
                raise Conflict(f"container name {new!r} is already in use")
            old = now.name
            _rename_netns(now, old, new)
            fsutil.atomic_write(paths.names / new, now.id + "\n")
            now.name = new
            save(now)
            try:
                if (paths.names / old).read_text().strip() == now.id:
                    (paths.names / old).unlink()
            except FileNotFoundError:
                pass
        return now


def _rename_netns(c: Container, old: str, new: str) -> None:
    from .network import netns
    from .state import is_running
    att = c.network
    if (att is None or att.netns != old or att.driver not in ("bridge", "none")
            or not is_running(c)):
        return
    olds = [s for s in c.journal if s.kind == "net.netns" and s.intent.get("name") == old]
    if not olds:
        return
    netns.check_free(new)
    netns.attach_step(c, new, c.pid)
    for s in olds:
        why = netns.detach(old, s.intent["tag"], s.intent.get("ns"))
        if why:
            raise Conflict(f"cannot rename the network namespace: {why}")
    c.journal = [s for s in c.journal if s not in olds]
    c.network = att._replace(netns=new)
    save(c)
