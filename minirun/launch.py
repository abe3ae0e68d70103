"""Launching PID 1: fork into a new PID namespace, attach the network, let it exec.

    minirun run ──fork──► PID 1 of a new PID namespace (init.child_main)
        │                    unshare mnt/uts/ipc/net ── NS ──►
        │  attach the network from the host side, using /proc/PID/ns/net
        │  ◄── GO ──         mounts, pivot_root, caps, exec
        │  EOF on the socket = exec succeeded; an error line = it did not

The PID namespace is unshared by the parent just around the fork (and
restored with setns right after), so no intermediate process is needed: the
forked child is PID 1 and our direct child. The messages are named in sync.py.
"""
from __future__ import annotations

import os
import signal
import _socket  # not socket.py: its import (selectors, enums) is ~3 ms of every start
import time

from . import faults, oplog
from . import kernel as k
from .errors import MinirunError
from .init import ChildPlan, child_main
from .record import CREATED, RUNNING, Container
from .rootfs import INIT_PATH, plan as mount_plan
from .state import proc_start_time, save
from .sync import GO, NS, Channel, reported_error

NS_FLAGS = k.CLONE_NEWNS | k.CLONE_NEWUTS | k.CLONE_NEWIPC
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                     signal.SIGUSR1, signal.SIGUSR2)


INIT_BINARY = "/usr/bin/catatonit"  # Debian's catatonit: podman's init, static


def init_binary(wanted: bool) -> str | None:
    """--init: catatonit, bound into the container as PID 1; without it (not installed)
    init.py's own Python init takes the job."""
    return INIT_BINARY if wanted and os.path.isfile(INIT_BINARY) else None


def child_plan(c: Container, driver, stdin_fd=None, output_fd=None,
               error_fd=None) -> ChildPlan:
    from .seccomp import program
    cfg = c.config
    etc = {f"/etc/{n}": str(c.dir / "etc" / n) for n in ("hostname", "hosts", "resolv.conf")}
    flags = NS_FLAGS | (k.CLONE_NEWNET if driver.new_netns else 0)
    return ChildPlan(
        # an image's layers: overlayfs's lowerdir=top:...:bottom
        lower=":".join(cfg.lowers) if cfg.lowers else cfg.rootfs,
        upper=str(c.dir / "upper"), work=str(c.dir / "work"),
        merged=str(c.dir / "merged"), unshare_flags=flags, hostname=cfg.hostname,
        steps=mount_plan(volumes=cfg.volumes, etc_files=etc, privileged=cfg.privileged,
                         tmpfs=cfg.tmpfs, init_binary=init_binary(cfg.init)),
        argv=list(cfg.command),
        env=cfg.env, workdir=cfg.workdir, user=cfg.user, caps=list(cfg.caps),
        groups=list(cfg.groups),
        read_only=cfg.read_only, tty=cfg.tty, init=cfg.init and not init_binary(cfg.init),
        init_path=INIT_PATH if init_binary(cfg.init) else None,
        stdin_fd=stdin_fd, output_fd=output_fd, error_fd=error_fd,
        cgroupns=any(s.kind == "cg.create" for s in c.journal),
        cgroup_tasks=_self_join(c),
        seccomp_bpf=program(cfg))


def start(c: Container, driver, stdin_fd=None, output_fd=None, on_fork=None, error_fd=None):
    """Fork PID 1, attach the network, let it exec. Returns (pid, pty master or None).
    On failure PID 1 is killed and reaped; the caller tears down the rest."""
    plan = child_plan(c, driver, stdin_fd, output_fd, error_fd)
    plan = plan._replace(join_netns_fd=driver.join_fd(c))
    faults.phase("child planned")
    if oplog.dry_run:  # --explain=only: the network's commands, no process
        if plan.join_netns_fd is not None:
            os.close(plan.join_netns_fd)
        driver.attach(c, os.getpid())  # every layer records and skips (oplog.skip)
        _explain_ping(c, plan, oplog.PID)
        oplog.unlisten_all()  # the plan's rollback is no part of the plan
        raise oplog.Planned("--explain=only: nothing was done")
    # the container as an OCI config.json (what minirun-oci reads), for people and tools
    from .oci.export import write_config
    write_config(c, plan.steps, bool(plan.unshare_flags & k.CLONE_NEWNET))
    ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    k.kernel.unshare(k.CLONE_NEWPID)
    try:
        pid = os.fork()
    except BaseException:
        k.kernel.setns(own_pidns, k.CLONE_NEWPID, "pid namespace")
        raise
    if pid == 0:
        ours.close()
        for s in FORWARDED_SIGNALS:
            signal.signal(s, signal.SIG_DFL)
        child_main(theirs, plan)
    faults.phase("forked")
    if on_fork:
        on_fork(pid)
    k.kernel.setns(own_pidns, k.CLONE_NEWPID, "pid namespace")
    os.close(own_pidns)
    theirs.close()
    if plan.join_netns_fd is not None:
        os.close(plan.join_netns_fd)
    chan = Channel(ours)
    moved = None
    try:
        # PID 1 is recorded before anything else is made for it: a crash from here on
        # leaves a record from which the process is found and killed.
        c.pid, c.pid_start = pid, proc_start_time(pid)
        save(c)
        # Into its cgroup before it runs any code of the user's (it waits for GO). On
        # cgroup v1 the first move into a cgroup waits for an RCU grace period (~10 ms
        # here), so it runs in a thread of its own, beside the child's mounts and the
        # network's attach, and is waited for just before GO.
        moved = (_move_to_cgroup(c, pid) if plan.cgroupns and not plan.cgroup_tasks
                 else None)
        _expect(chan, NS, pid)
        faults.phase("namespaces ready")
        _explain_self_join(plan, pid)
        try:
            driver.attach(c, pid)
            faults.phase("network attached")
            _explain_ping(c, plan, pid)
            if moved is not None:
                moved()
                moved = None
                faults.phase("cgroup joined")
            faults.check("start.go")
            c.state = CREATED
            save(c)
            chan.send(GO)
            faults.phase("go sent")
        except (MinirunError, OSError):
            # If the child failed meanwhile (a bad mount), its reason is the real one.
            _raise_child_error(chan, pid)
            raise
        master = None
        if plan.tty:
            import socket  # -t only
            msg, fds, _f, _a = socket.recv_fds(ours, 4096, 1)
            if not fds:  # an error line instead of the pty
                _check(msg.decode().strip() or None, "pty", pid)
            master = fds[0]
        _expect(chan, None, pid)  # EOF: the command was exec'd
        faults.phase("exec confirmed")
    except BaseException:
        kill_and_reap(pid)
        if moved is not None:  # done before the teardown looks at the cgroup
            try:
                moved()
            except BaseException:  # noqa: BLE001 - the start's own failure is reported
                pass
        raise
    finally:
        ours.close()
    c.state, c.started = RUNNING, time.time()
    save(c)
    return pid, master


def _explain_ping(c: Container, plan, pid) -> None:
    """PID 1 itself let every group ping (init.py, before the network was attached); this
    is the same change as a command, now that the namespace has a name."""
    if not oplog.listening():
        return
    if not (plan.unshare_flags & k.CLONE_NEWNET or plan.join_netns_fd is not None):
        return
    netns = c.network.netns if c.network is not None else None
    enter = f"ip netns exec {netns}" if netns else f"nsenter --net=/proc/{pid}/ns/net"
    oplog.record(f'{enter} sysctl -w net.ipv4.ping_group_range="0 2147483647"',
                 why="inside the container: ping works without CAP_NET_RAW (ICMP datagram "
                 "sockets for every group; PID 1 did this itself, before the network was "
                 "attached)")


def _explain_self_join(plan, pid: int) -> None:
    """PID 1 joined its v1 cgroups itself (init.join_cgroup_v1); the same move, as the
    commands a learner would type."""
    if not oplog.listening():
        return
    for i, tasks in enumerate(plan.cgroup_tasks):
        oplog.record(f"echo {pid} > {os.path.dirname(tasks)}/cgroup.procs",
                     why=None if i else "PID 1 into its cgroup, in every hierarchy (PID 1 "
                     "did it itself, first thing: \"0\" into each `tasks` file moves the "
                     "writer without the kernel's global lock and its RCU wait)")


def _self_join(c: Container) -> tuple[str, ...]:
    """cgroup v1: the `tasks` files PID 1 writes "0" into itself (init.join_cgroup_v1,
    no RCU wait); cgroup v2 has no such file: the parent moves it (_move_to_cgroup)."""
    from .cgroups import group
    g = group(c) if any(s.kind == "cg.create" for s in c.journal) else None
    if g is None or g.version != 1:
        return ()
    return tuple(f"{path}/tasks" for _ctrls, path in g.dirs)


def _move_to_cgroup(c: Container, pid: int):
    """Start moving `pid` into the container's cgroup; returns the function that waits
    for it (and raises what it raised). `_thread`, not `threading`: the latter's import
    alone would cost more than it saves on a start without a network."""
    import _thread
    from .cgroups import join
    done, failed = _thread.allocate_lock(), []
    done.acquire()

    def move():
        try:
            join(c, pid)
        except BaseException as e:  # noqa: BLE001 - handed to the waiter
            failed.append(e)
        finally:
            done.release()

    _thread.start_new_thread(move, ())

    def wait():
        done.acquire()
        if failed:
            raise failed[0]
    return wait


def _raise_child_error(chan: Channel, pid: int) -> None:
    import select
    # A child that failed has written its reason before exiting, and its exit is
    # what made our side fail: the line is already there, no need to wait for it.
    r, _, _ = select.select([chan.sock], [], [], 0.02)
    if r:
        try:
            line = chan.recv()
        except OSError:
            return
        if reported_error(line):
            _check(line, None, pid)


def _expect(chan: Channel, want: str | None, pid: int) -> None:
    _check(chan.recv(), want, pid)


def _check(line: str | None, want: str | None, pid: int) -> None:
    """Accept the child's message `want` (None: EOF, the exec happened), or raise."""
    if line == want:
        return
    if line is None:
        raise MinirunError("container init exited before it was ready")
    err = reported_error(line)
    kill_and_reap(pid)
    raise err or MinirunError(f"unexpected message from container init: {line!r}")


def kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
