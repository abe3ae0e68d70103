"""create, start, kill, delete: the container's life as an engine drives it.

`create` forks the init (into a new PID namespace: unshared around the fork, as
launch.py does, so the init is PID 1 and our direct child), moves it into its cgroup,
runs the createRuntime hooks, lets it build its root and waits until it is READY and
blocked on the exec fifo. Then it writes the pid file and exits: the init is
re-parented to the engine's subreaper (conmon, the containerd shim), which waits for it.
Whatever fails before that undoes everything create made.

`minirun run` is a front end over the same two calls, in-process (FrontEnd below):
it writes the container's bundle (oci/export.py), parses it with the same code, and
hands over only what an engine's process would have of its own: its stdio, a console
socketpair, the cgroup its journal owns (v1: the init joins it itself, without the
kernel's global lock; v2: the front end's move before GO), and the network, attached
from the front end once the namespaces exist, beside the init's mounts (as podman
does with netavark).
"""
from __future__ import annotations

import errno
import json
import os
import signal
import _socket  # not socket.py (~3 ms to import on `minirun run`'s path)
import time
from ..tuples import NamedTuple

from .. import faults
from .. import kernel as k
from ..errors import MinirunError
from ..fsutil import remove_tree
from ..procs import kill_and_reap
from ..sync import GO, NS, Channel, reported_error
from . import cgroup, hooks, state as ostate
from .child import READY, Plan, child_main
from .config import Spec, load

_CHILD_DEFAULT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                          signal.SIGUSR1, signal.SIGUSR2, signal.SIGPIPE)


class FrontEnd(NamedTuple):
    """What an in-process front end (`minirun run`) hands the runtime with its bundle."""
    spec: Spec                        # its config.json, parsed by config.parse
    seccomp_bpf: bytes | None         # compiled by the front end (the default profile
                                      # is not copied into config.json)
    stdio: tuple = (None, None, None)  # fds for the init's 0, 1, 2 (None: ours)
    console: object = None            # a socket (the init's end): the pty master comes back
    cgroup: dict | None = None        # its cgroup as state.json keeps one (not owned)
    cgroup_tasks: tuple = ()          # cgroup v1: the init joins these itself
    join_cgroup: object = None        # cgroup v2: fn(pid), the front end's move, before GO
    on_fork: object = None            # fn(pid), at once: the front end records the pid
    attach: object = None             # fn(pid), after GO, beside the init's mounts


def create(root: str, cid: str, bundle: str, pid_file: str | None = None,
           console_socket: str | None = None, no_pivot: bool = False,
           systemd: bool = False, log=None, front: FrontEnd | None = None) -> ostate.State:
    spec = front.spec if front else load(bundle)
    for w in spec.warnings:
        if log:
            log("warning", f"config.json: {w}")
    if spec.process is None:
        raise MinirunError("config.json has no process to run")
    has_console = bool(console_socket or front and front.console)
    if spec.process.terminal and not has_console:
        raise MinirunError("process.terminal needs --console-socket")
    if not spec.process.terminal and has_console:
        raise MinirunError("--console-socket needs process.terminal: true")
    if front:
        bpf = front.seccomp_bpf
    else:
        from .process import seccomp_program
        bpf = seccomp_program(spec.seccomp, spec.process)  # bad profiles fail before anything
    st = ostate.make(root, ostate.check_id(cid), {
        "bundle": spec.bundle, "rootfs": spec.root, "annotations": spec.annotations,
        "hooks": {n: hooks.to_json(spec.hooks[n]) for n in ("poststart", "poststop")},
        "cgroupns": "cgroup" in spec.new_namespaces(), "pid": 0, "creating": True})
    pid = None
    try:
        os.mkfifo(st.fifo, 0o600)
        os.mkfifo(st.execd, 0o600)
        # a front end's cgroup is its own (journaled, undone by it): joined, not made
        st.data["cgroup"] = front.cgroup if front else cgroup.create(spec, cid, root,
                                                                     systemd)
        if not front:
            st.save()
        pid = _fork_init(st, spec, bpf, console_socket, no_pivot, front)
        if pid_file:
            from ..fsutil import atomic_write
            atomic_write(pid_file, str(pid), 0o644)
        del st.data["creating"]
        st.save()
    except BaseException:
        if pid:
            kill_and_reap(pid)
        cgroup.remove(st.data.get("cgroup"))
        remove_tree(st.dir)
        raise
    return st


def _fork_init(st: ostate.State, spec, bpf, console_socket, no_pivot,
               front: FrontEnd | None) -> int:
    join_fds, pid_path = {}, None
    console = front.console if front else None
    fifo_fd = execd_fd = ours = theirs = None
    own_pidns = None
    try:
        for t, path in spec.namespaces:
            if path is None:
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise MinirunError(f"cannot open the {t} namespace {path}: {e.strerror}") \
                    from None
            if t == "pid":
                pid_path = fd
            else:
                join_fds[t] = fd
        if console_socket:
            from .process import connect_console
            console = connect_console(console_socket)
        fifo_fd = os.open(st.fifo, os.O_RDWR | os.O_CLOEXEC)
        # the init's only fd of it closes at its exec (or its death): EOF for `start`
        execd_fd = os.open(st.execd, os.O_RDWR | os.O_CLOEXEC)
        ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        plan = Plan(spec, fifo_fd, execd_fd, console.fileno() if console else None,
                    join_fds, bpf, no_pivot, {},
                    **({"stdio": front.stdio, "cgroup_tasks": front.cgroup_tasks,
                        "name": "minirun", "die_with_front": True} if front else {}))
        # The PID namespace applies to children only: enter it (or a new one) just
        # around the fork, and come back right after, as launch.py does.
        own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        entered = pid_path is not None or "pid" in spec.new_namespaces()
        if pid_path is not None:
            k.kernel.setns(pid_path, k.CLONE_NEWPID, "pid namespace")
        elif entered:
            k.kernel.unshare(k.CLONE_NEWPID)
        try:
            pid = os.fork()
        except BaseException:
            if entered:
                k.kernel.setns(own_pidns, k.CLONE_NEWPID, "pid namespace")
            raise
        if pid and entered:
            k.kernel.setns(own_pidns, k.CLONE_NEWPID, "pid namespace")
        if pid == 0:
            ours.close()
            for s in _CHILD_DEFAULT_SIGNALS:
                signal.signal(s, signal.SIG_DFL)
            child_main(theirs, plan)
        faults.phase("forked")
        if front and front.on_fork:
            front.on_fork(pid)
    finally:
        for fd in (*join_fds.values(), pid_path, own_pidns, fifo_fd, execd_fd):
            if fd is not None:
                os.close(fd)
        if console is not None:
            console.close()
        if theirs is not None:
            theirs.close()
    chan = Channel(ours)
    try:
        ostate.record_pid(st, pid)
        st.save()
        _expect(chan, NS)
        faults.phase("namespaces ready")
        if front is None:
            cgroup.join(st.data.get("cgroup"), pid)
        elif front.join_cgroup is not None:
            front.join_cgroup(pid)
        # the environment exists (lifecycle step 2 done): the hooks see "created"
        live = dict(st.oci(), status="created")
        hooks.run(spec.hooks["prestart"], "prestart", live)
        hooks.run(spec.hooks["createRuntime"], "createRuntime", live)
        chan.send(json.dumps(live))
        chan.send(GO)
        faults.phase("go sent")
        if front is not None and front.attach is not None:
            try:
                front.attach(pid)
            except BaseException:
                _raise_child_error(chan)  # if the init failed meanwhile: its reason
                raise
        _expect(chan, READY)
        faults.phase("ready")
    except BaseException:
        kill_and_reap(pid)
        raise
    finally:
        ours.close()
    return pid


def _raise_child_error(chan: Channel) -> None:
    """An init that failed has written its reason before exiting: raise it, if it is
    there already (no wait)."""
    import select
    if select.select([chan.sock], [], [], 0.02)[0]:
        try:
            line = chan.recv()
        except OSError:
            return
        err = reported_error(line) if line else None
        if err:
            raise err


def _expect(chan: Channel, want: str) -> None:
    line = chan.recv()
    if line == want:
        return
    if line is None:
        raise MinirunError("the container's init exited before it was ready")
    raise reported_error(line) or MinirunError(f"unexpected message from init: {line!r}")


def start(st: ostate.State, log=None) -> None:
    status = st.status()
    if status != "created":
        raise MinirunError(f"cannot start container {st.id}: it is {status}, not created")
    try:
        fd = os.open(st.fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ENXIO:  # nobody reads: the init has gone
            raise MinirunError(f"cannot start container {st.id}: its init has exited") \
                from None
        raise MinirunError(f"cannot start container {st.id}: {e.strerror}") from None
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)
    os.unlink(st.fifo)
    _wait_exec(st)
    # a failing poststart hook is a warning; the others still run (runtime.md)
    post = hooks.from_json(st.data["hooks"]["poststart"])
    if post:  # the state (a /proc read, the freezer's file) only for a hook to read
        hooks.run(post, "poststart", st.oci(), warn=log or _ignore)


def _wait_exec(st: ostate.State) -> None:
    """Until the init has exec'd the user's program (or died): its execd fifo fd is
    close-on-exec, so reading reaches the end then. A state dir of an older minirun
    has no such fifo."""
    try:
        fd = os.open(st.execd, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        os.set_blocking(fd, True)
        while os.read(fd, 64):
            pass
    finally:
        os.close(fd)
        os.unlink(st.execd)


def _ignore(_level: str, _msg: str) -> None:
    pass


def parse_signal(text: str) -> int:
    t = text.strip().upper()
    if t.isdigit():
        n = int(t)
        if 0 < n < signal.NSIG:
            return n
    else:
        name = t if t.startswith("SIG") else "SIG" + t
        sig = getattr(signal.Signals, name, None) if name in signal.Signals.__members__ \
            else None
        if sig is not None:
            return int(sig)
    raise MinirunError(f"invalid signal {text!r}")


def kill(st: ostate.State, sig: int, all_procs: bool = False) -> None:
    status = st.status()
    if status == "stopped":
        # the words engines look for (containerd's shim: "container not running")
        raise MinirunError(f"cannot signal {st.id}: container not running")
    targets = cgroup.pids(st.data.get("cgroup")) if all_procs else []
    if st.pid not in targets:
        targets.insert(0, st.pid)
    from ..procs import proc_start_time, signal_process
    for pid in targets:  # through a pidfd, as `minirun kill` does: never a recycled PID
        signal_process(pid, st.data["pid_start"] if pid == st.pid else proc_start_time(pid),
                       sig)


def delete(st: ostate.State, force: bool = False, log=None) -> None:
    status = st.status()
    if status in ("running", "paused") and not force:
        raise MinirunError(f"cannot delete container {st.id}: it is {status} (stop it "
                           "first, or use --force)")
    if status != "stopped":
        if status == "paused":
            cgroup.freeze(st.data.get("cgroup"), False)
        kill(st, signal.SIGKILL, all_procs=True)
        deadline = time.monotonic() + 10
        while st.alive() and time.monotonic() < deadline:
            time.sleep(0.005)
    failures = cgroup.remove(st.data.get("cgroup"))
    if failures and log:
        for f in failures:
            log("warning", str(f))
    hooks.run(hooks.from_json(st.data.get("hooks", {}).get("poststop")), "poststop",
              st.oci(), warn=log or _ignore)
    remove_tree(st.dir)


def remove_leftover(root: str, cid: str) -> bool:
    """`delete --force` of an id with a directory but no state (a create killed half
    way): remove the directory. True if there was one."""
    d = os.path.join(root, ostate.check_id(cid))
    if os.path.isdir(d):
        remove_tree(d)
        return True
    return False

