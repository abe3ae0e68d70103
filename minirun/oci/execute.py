"""exec: a further process in a running container, described by a process.json.

    runtime ──fork──► joiner: into the cgroup, setns into each of the init's
        │                namespaces (minirun's order: execute.JOIN_ORDER, then cgroup)
        │                ──fork──► the process (inside the PID namespace): pty,
        │                          process.become                       (exec)
        │  ◄── "pid N" ── the joiner, which then exits
        │  EOF on the socket = exec done; an error line = it failed

The runtime is a child subreaper, so the process is re-parented to it when the joiner
exits; with --detach the runtime exits too and the process goes on to the engine's
subreaper (conmon), as the engine expects.
"""
from __future__ import annotations

import os
import signal
import socket

from .. import kernel as k
from ..errors import MinirunError
from ..execute import JOIN_ORDER
from ..init import _take_pty, exit_code, forward_signals
from ..sync import Channel, reported_error
from . import cgroup
from .config import parse_process

__import__("resource")  # process.set_rlimits' module: loaded before we enter the mounts


def load_process(path: str):
    import json
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise MinirunError(f"cannot read {path}: {e.strerror}") from None
    except ValueError as e:
        raise MinirunError(f"{path}: not valid JSON ({e})") from None
    return parse_process(doc, "process")


def exec_process(st, proc, *, detach: bool, pid_file: str | None,
                 console_socket: str | None) -> int:
    if st.status() not in ("running", "created"):
        raise MinirunError(f"container {st.id} is not running")
    if proc.terminal and not console_socket:
        raise MinirunError("process.terminal needs --console-socket")
    from .process import seccomp_program
    from .config import load
    try:
        spec_seccomp = load(st.data["bundle"]).seccomp
    except MinirunError:
        spec_seccomp = None
    bpf = seccomp_program(spec_seccomp, proc)
    pid = st.pid
    names = [(n, f) for n, f in JOIN_ORDER] + ([("cgroup", k.CLONE_NEWCGROUP)]
                                               if st.data.get("cgroupns") else [])
    fds = {n: os.open(f"/proc/{pid}/ns/{n}", os.O_RDONLY | os.O_CLOEXEC) for n, _ in names}
    if not st.alive():
        for fd in fds.values():
            os.close(fd)
        raise MinirunError(f"container {st.id} is not running")
    console = None
    if console_socket:
        from .process import connect_console
        console = connect_console(console_socket)
    k.kernel.set_child_subreaper()
    ours, theirs = socket.socketpair()
    joiner = os.fork()
    if joiner == 0:
        ours.close()
        _joiner(theirs, fds, names, st.data.get("cgroup"), proc, bpf, console)
    theirs.close()
    for fd in fds.values():
        os.close(fd)
    if console is not None:
        console.close()
    chan = Channel(ours)
    try:
        line = chan.recv()
        os.waitpid(joiner, 0)
        if not line or not line.startswith("pid "):
            raise reported_error(line) or MinirunError("exec failed before the process "
                                                       "started")
        child = int(line.split()[1])
        line = chan.recv()
        if line:  # an error line instead of EOF
            os.waitpid(child, 0)
            raise reported_error(line) or MinirunError(f"exec: unexpected {line!r}")
    finally:
        ours.close()
    if pid_file:
        from ..fsutil import atomic_write
        atomic_write(pid_file, str(child), 0o644)
    if detach:
        return 0
    forward_signals(child, (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                            signal.SIGUSR1, signal.SIGUSR2))
    _, status = os.waitpid(child, 0)
    return exit_code(status)


def _joiner(sock, fds, names, cg, proc, bpf, console) -> None:
    chan = Channel(sock)
    code = 125
    try:
        cgroup.join(cg, os.getpid())
        k.kernel.set_dumpable(False)
        for n, flag in names:
            k.kernel.setns(fds[n], flag, f"{n} namespace")
        inner = os.fork()
        if inner == 0:
            try:
                os.setsid()
                if console is not None:
                    _take_pty(Channel(console), console=False)
                    console.close()
                from .process import become
                become(proc, bpf)
            except MinirunError as e:
                chan.send_error(e.exit_code, str(e))
                os._exit(e.exit_code)
            except OSError as e:
                chan.send_error(126, f"exec {proc.args[0]!r}: {e.strerror}")
                os._exit(126)
        chan.send(f"pid {inner}")
        code = 0
    except MinirunError as e:
        chan.send_error(e.exit_code, str(e))
        code = e.exit_code
    except BaseException as e:
        chan.send_error(125, f"exec failed: {e!r}")
    os._exit(code)
