"""create, start, kill, delete: the container's life as an engine drives it.

`create` forks the init (into a new PID namespace: unshared around the fork, as
launch.py does, so the init is PID 1 and our direct child), moves it into its cgroup,
runs the createRuntime hooks, lets it build its root and waits until it is READY and
blocked on the exec fifo. Then it writes the pid file and exits: the init is
re-parented to the engine's subreaper (conmon, the containerd shim), which waits for it.
Whatever fails before that undoes everything create made.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import time

from .. import kernel as k
from ..errors import MinirunError
from ..sync import GO, NS, Channel, reported_error
from . import cgroup, hooks, state as ostate
from .child import READY, Plan, child_main
from .config import load


def create(root: str, cid: str, bundle: str, pid_file: str | None = None,
           console_socket: str | None = None, no_pivot: bool = False,
           systemd: bool = False, log=None) -> ostate.State:
    spec = load(bundle)
    for w in spec.warnings:
        if log:
            log("warning", f"config.json: {w}")
    if spec.process is None:
        raise MinirunError("config.json has no process to run")
    if spec.process.terminal and not console_socket:
        raise MinirunError("process.terminal needs --console-socket")
    if not spec.process.terminal and console_socket:
        raise MinirunError("--console-socket needs process.terminal: true")
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
        st.data["cgroup"] = cgroup.create(spec, cid, root, systemd)
        st.save()
        pid = _fork_init(st, spec, bpf, console_socket, no_pivot)
        if pid_file:
            from ..fsutil import atomic_write
            atomic_write(pid_file, str(pid), 0o644)
        del st.data["creating"]
        st.save()
    except BaseException:
        if pid:
            _kill_wait(pid)
        cgroup.remove(st.data.get("cgroup"))
        shutil.rmtree(st.dir, ignore_errors=True)
        raise
    return st


def _fork_init(st: ostate.State, spec, bpf, console_socket, no_pivot) -> int:
    join_fds, pid_path = {}, None
    console = None
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
        ours, theirs = socket.socketpair()
        plan = Plan(spec, fifo_fd, execd_fd, console.fileno() if console else None,
                    join_fds, bpf, no_pivot, {})
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
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
                signal.signal(s, signal.SIG_DFL)
            child_main(theirs, plan)
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
        cgroup.join(st.data.get("cgroup"), pid)
        # the environment exists (lifecycle step 2 done): the hooks see "created"
        live = dict(st.oci(), status="created")
        hooks.run(spec.hooks["prestart"], "prestart", live)
        hooks.run(spec.hooks["createRuntime"], "createRuntime", live)
        chan.send(json.dumps(live))
        chan.send(GO)
        _expect(chan, READY)
    except BaseException:
        _kill_wait(pid)
        raise
    finally:
        ours.close()
    return pid


def _expect(chan: Channel, want: str) -> None:
    line = chan.recv()
    if line == want:
        return
    if line is None:
        raise MinirunError("the container's init exited before it was ready")
    raise reported_error(line) or MinirunError(f"unexpected message from init: {line!r}")


def _kill_wait(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


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
    hooks.run(hooks.from_json(st.data["hooks"]["poststart"]), "poststart", st.oci(),
              warn=log or _ignore)


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
    for pid in targets:
        _signal(pid, sig, st.data["pid_start"] if pid == st.pid else None)


def _signal(pid: int, sig: int, start: int | None) -> None:
    from ..procs import proc_start_time
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return  # gone
    try:  # the pidfd pins the process: check it is the container's, then signal it
        if start is None or proc_start_time(pid) == start:
            signal.pidfd_send_signal(fd, sig)
    except ProcessLookupError:
        pass
    finally:
        os.close(fd)


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
    shutil.rmtree(st.dir, ignore_errors=True)


def remove_leftover(root: str, cid: str) -> bool:
    """`delete --force` of an id with a directory but no state (a create killed half
    way): remove the directory. True if there was one."""
    d = os.path.join(root, ostate.check_id(cid))
    if os.path.isdir(d):
        shutil.rmtree(d, ignore_errors=True)
        return True
    return False

