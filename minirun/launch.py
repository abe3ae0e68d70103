"""Launching PID 1: `minirun run` is a front end over minirun-oci's create and start.

    minirun run: config.json (oci/export.py) ── parsed by oci/config.py, as any bundle
        │
        ├─ oci create ──fork──► PID 1 of a new PID namespace (oci/child.py)
        │     ◄── NS ──            joins its v1 cgroups, unshares, lo up
        │     ── GO ──►            overlay, mounts, pivot_root, /dev, masks, hostname,
        │  attach the network       enters cwd, finds the command
        │  (/proc/PID/ns/net),
        │  beside PID 1's mounts
        │     ◄── READY ──          blocks on the exec fifo
        └─ oci start: one byte into the fifo; the execd fifo's end = the exec happened

The same create/start code serves `minirun-oci create/start` for podman and
containerd; `run` adds only what a front end owns (oci/create.py FrontEnd): its
stdio, the terminal, the cgroup its journal made, and the network, attached from
here once the namespaces exist, as podman does with netavark. The OCI state
directory is the container's own (CONTAINER_DIR/oci/ID): `minirun-oci --root
CONTAINER_DIR/oci state ID` answers for a running `minirun run` container too.
"""
from __future__ import annotations

import os
import signal
import _socket  # not socket.py: its import (selectors, enums) is ~3 ms of every start
import time

from . import faults, oplog
from .errors import MinirunError
from .record import CREATED, RUNNING, Container
from .rootfs import INIT_PATH, plan as mount_plan
from .procs import kill_and_reap
from .state import proc_start_time, save

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                     signal.SIGUSR1, signal.SIGUSR2)


INIT_BINARY = "/usr/bin/catatonit"  # Debian's catatonit: podman's init, static


def init_binary(wanted: bool) -> str | None:
    """--init: catatonit, bound into the container's /dev and run as PID 1."""
    if not wanted:
        return None
    if not os.path.isfile(INIT_BINARY):
        raise MinirunError(f"--init needs {INIT_BINARY} (apt-get install catatonit)")
    return INIT_BINARY


def bundle(c: Container, driver):
    """The container's OCI configuration (a dict, also written as config.json) and the
    front end's part of it: (config, cgroup, v1 `tasks` files PID 1 joins, seccomp
    program)."""
    from .seccomp import program
    from .oci.export import config_of
    cfg = c.config
    etc = {f"/etc/{n}": str(c.dir / "etc" / n) for n in ("hostname", "hosts", "resolv.conf")}
    init = init_binary(cfg.init)
    steps = mount_plan(volumes=cfg.volumes, etc_files=etc, privileged=cfg.privileged,
                       tmpfs=cfg.tmpfs, init_binary=init)
    join = driver.join_path(c)
    cgroup, tasks = _cgroup(c)
    config = config_of(c, steps,
                       # an image's layers: overlayfs's lowerdir=top:...:bottom
                       lower=":".join(cfg.lowers) if cfg.lowers else cfg.rootfs,
                       new_netns=driver.new_netns,
                       netns_path=join,
                       cgroupns=cgroup is not None,
                       init_path=INIT_PATH if init else None)
    return config, cgroup, tasks, program(cfg)


def start(c: Container, driver, stdin_fd=None, output_fd=None, on_fork=None, error_fd=None):
    """Create and start the container through the OCI runtime layer, attaching the
    network in between. Returns (pid, pty master or None). On failure PID 1 is killed
    and reaped; the caller tears down the rest."""
    config, cgroup, tasks, bpf = bundle(c, driver)
    faults.phase("child planned")
    if oplog.dry_run:  # --explain=only: the network's commands, no process
        driver.attach(c, os.getpid())  # every layer records and skips (oplog.skip)
        _explain_ping(c, config, oplog.PID)
        oplog.unlisten_all()  # the plan's rollback is no part of the plan
        raise oplog.Planned("--explain=only: nothing was done")
    from .oci import create as oci
    from .oci.config import parse
    from .oci.export import write_config
    write_config(c, config)  # for people and tools; the start parses the same dict
    spec = parse(config, str(c.dir))
    faults.phase("bundle parsed")
    ours = theirs = None
    if c.config.tty:
        ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    pid_box: list[int] = []

    def forked(pid: int) -> None:
        # PID 1 is recorded before anything else is made for it: a crash from here on
        # leaves a record from which the process is found and killed.
        pid_box.append(pid)
        if on_fork:
            on_fork(pid)
        c.pid, c.pid_start = pid, proc_start_time(pid)
        save(c)

    def join_v2(pid: int) -> None:
        from .cgroups import join
        join(c, pid)
        faults.phase("cgroup joined")

    def attach(pid: int) -> None:
        _explain_self_join(tasks, pid)
        driver.attach(c, pid)
        faults.phase("network attached")
        _explain_ping(c, config, pid)

    front = oci.FrontEnd(
        spec, bpf, stdio=(stdin_fd, output_fd, output_fd if error_fd is None else error_fd),
        console=theirs,
        cgroup=cgroup, cgroup_tasks=tasks,
        join_cgroup=join_v2 if cgroup is not None and not tasks else None,
        on_fork=forked, attach=attach)
    master = None
    oci_root = str(c.dir / "oci")
    oci.remove_leftover(oci_root, c.id)  # the state of an earlier start (restart)
    try:
        st = oci.create(oci_root, c.id, str(c.dir), front=front)
        pid = st.pid
        faults.check("start.go")
        c.state = CREATED
        save(c)
        if ours is not None:
            master = _receive_pty(ours, pid)
        oci.start(st)
        faults.phase("exec confirmed")
    except BaseException:
        if pid_box:
            kill_and_reap(pid_box[0])
        if master is not None:
            os.close(master)
        raise
    finally:
        if ours is not None:
            ours.close()
    c.state, c.started = RUNNING, time.time()
    save(c)
    return pid, master


def _receive_pty(sock, pid: int) -> int:
    """The pty master PID 1 made in the container's devpts (oci/child.py, before READY)."""
    import socket  # -t only
    msg, fds, _f, _a = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise MinirunError(f"container init (pid {pid}) sent no terminal")
    return fds[0]


def _explain_ping(c: Container, config: dict, pid) -> None:
    """config.json's sysctl that lets every group ping, which PID 1 writes itself (after
    its mounts), as the command a learner would type."""
    if not oplog.listening():
        return
    if "net.ipv4.ping_group_range" not in config["linux"].get("sysctl", {}):
        return
    netns = c.network.netns if c.network is not None else None
    enter = f"ip netns exec {netns}" if netns else f"nsenter --net=/proc/{pid}/ns/net"
    oplog.record(f'{enter} sysctl -w net.ipv4.ping_group_range="0 2147483647"',
                 why="inside the container: ping works without CAP_NET_RAW (ICMP datagram "
                 "sockets for every group; config.json's linux.sysctl, which PID 1 writes "
                 "itself)")


def _explain_self_join(tasks_files, pid: int) -> None:
    """PID 1 joined its v1 cgroups itself (init.join_cgroup_v1); the same move, as the
    commands a learner would type."""
    if not oplog.listening():
        return
    for i, tasks in enumerate(tasks_files):
        oplog.record(f"echo {pid} > {os.path.dirname(tasks)}/cgroup.procs",
                     why=None if i else "PID 1 into its cgroup, in every hierarchy (PID 1 "
                     "did it itself, first thing: \"0\" into each `tasks` file moves the "
                     "writer without the kernel's global lock and its RCU wait)")


def _cgroup(c: Container):
    """The container's cgroup (made by the journal step cg.create), or None: as the
    OCI state records it (not owned: `minirun-oci delete` would leave it to minirun),
    and, on cgroup v1, the `tasks` files PID 1 writes "0" into itself
    (init.join_cgroup_v1, no RCU wait); v2 has no such file: we move it (join_v2)."""
    if not any(s.kind == "cg.create" for s in c.journal):
        return None, ()
    from .cgroups import group
    g = group(c)
    if g is None:
        return None, ()
    data = {"version": g.version, "dirs": [[list(ctrls), path] for ctrls, path in g.dirs],
            "tag": "", "owned": False, "devices": None}
    tasks = tuple(f"{path}/tasks" for _ctrls, path in g.dirs) if g.version == 1 else ()
    return data, tasks
