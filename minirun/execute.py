"""`minirun exec`: run another command inside a running container.

The new process joins every namespace of the container's PID 1 with setns
(ipc, uts, net, pid, then mnt), enters its root through /proc/PID/root, and
is dropped to the same capabilities. It is not dumpable while it holds host
resources, so nothing in the container can ptrace it or read its memory
(the CVE-2019-5736 lesson). A setns into a PID namespace only applies to
children, hence the second fork.
"""
from __future__ import annotations

import os
import signal
import socket

from . import kernel as k
from .errors import MinirunError
from .init import _take_pty, exec_command, exit_code, find_executable, forward_signals
from .sync import Channel, reported_error
from .record import Container
from .procs import process_alive
from .state import is_running

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
JOIN_ORDER = (("ipc", k.CLONE_NEWIPC), ("uts", k.CLONE_NEWUTS), ("net", k.CLONE_NEWNET),
              ("pid", k.CLONE_NEWPID), ("mnt", k.CLONE_NEWNS))


def exec_in(c: Container, argv: list[str], *, tty: bool = False, interactive: bool = False,
            env: dict[str, str] | None = None, workdir: str | None = None,
            user: tuple[int, int] | None = None, detach: bool = False) -> int:
    """Run `argv` in the container; its exit code. With `detach` (exec -d), 0 as soon
    as the command was exec'd: it runs on with /dev/null as stdio, and its joiner (in
    the container's cgroup, so rm -f kills both) collects its exit status."""
    if not is_running(c):
        raise MinirunError(f"container {c.name} is not running")
    if c.paused:
        from .errors import Conflict
        raise Conflict(f"container {c.name} is paused: unpause it first")
    pid = c.pid
    from .seccomp import program
    seccomp_bpf = program(c.config)  # the container's own filter (None: unconfined)
    fds = {name: os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
           for name, _ in JOIN_ORDER}
    rootfd = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    if not process_alive(pid, c.pid_start):
        # PID 1 died (and its PID may be someone else's now) between the check and the
        # opens: those namespaces are not the container's to join
        for fd in (*fds.values(), rootfd):
            os.close(fd)
        raise MinirunError(f"container {c.name} is not running")
    full_env = dict(c.config.env)
    full_env.update(env or {})
    keep = list(c.config.caps)
    if user is None and c.config.user:
        user = c.config.user
    from .cgroups import group
    cgroup = group(c)  # the container's cgroup (and cgroup namespace), if it has one
    if cgroup is not None:
        fds["cgroup"] = os.open(f"/proc/{pid}/ns/cgroup", os.O_RDONLY | os.O_CLOEXEC)
    ours, theirs = socket.socketpair()
    child = os.fork()
    if child == 0:
        ours.close()
        _joiner(theirs, fds, rootfd, argv, full_env, workdir or c.config.workdir,
                user, keep, tty, interactive, cgroup, seccomp_bpf, detach)
    theirs.close()
    for fd in (*fds.values(), rootfd):
        os.close(fd)

    forward_signals(child, FORWARDED)
    master = None
    try:
        if tty:
            msg, got, _f, _a = socket.recv_fds(ours, 4096, 1)
            if got:
                master = got[0]
            else:
                _raise_reported(msg.decode())
        line = Channel(ours).recv()
        if line:
            _raise_reported(line)
    finally:
        ours.close()
    if detach:
        # the joiner has forked the command and gone on (an orphan now: the init of
        # our PID namespace reaps it)
        os.waitpid(child, 0)
        return 0
    if master is not None:
        from .tty import relay
        pidfd = k.kernel.pidfd_open(child)
        relay(master, pidfd)
        os.close(pidfd)
        os.close(master)
    _, status = os.waitpid(child, 0)
    return exit_code(status)


def _raise_reported(line: str) -> None:
    raise reported_error(line) or MinirunError(f"unexpected message from exec: {line!r}")


def _enter_workdir(workdir: str) -> None:
    """chdir into the container's `workdir` (already chrooted): a missing directory is an
    error (exit 125), as in Docker, never a silent fallback to /."""
    try:
        os.chdir(workdir)
        cwd = os.getcwd()
    except OSError as e:
        raise MinirunError(f"cannot enter working directory {workdir}: {e.strerror}") from None
    if not cwd.startswith("/"):  # "(unreachable)/...": a path that led out of the root
        raise MinirunError(f"working directory {workdir} is outside the container")


def _joiner(sock, fds, rootfd, argv, env, workdir, user, keep, tty, interactive,
            cgroup=None, seccomp_bpf=None, detach=False) -> None:
    chan = Channel(sock)
    code = 125
    try:
        if cgroup is not None:
            # into the container's cgroup first (limits apply, teardown finds it),
            # then its cgroup namespace, whose root that cgroup is
            cgroup.add(os.getpid())
            k.kernel.setns(fds.pop("cgroup"), k.CLONE_NEWCGROUP, "cgroup namespace")
        k.kernel.set_dumpable(False)
        for name, flag in JOIN_ORDER:
            k.kernel.setns(fds[name], flag, f"{name} namespace")
        os.fchdir(rootfd)
        os.chroot(".")
        _enter_workdir(workdir)
        if detach:
            # exec -d: nothing of the CLI's stays with it (a caller reading our stdout
            # would otherwise wait for the detached command), and a session of its own.
            # Its parent is a middle process that exits at once, so the command's
            # reaper is the init of the CLI's PID namespace, not the CLI.
            null = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.close(null)
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
        inner = os.fork()  # the first process that is really inside the PID namespace
        if inner == 0:
            try:
                os.setsid()  # its own session, so the pty can become its terminal
                if tty:
                    _take_pty(chan, console=False)
                elif not interactive:
                    null = os.open("/dev/null", os.O_RDONLY)
                    os.dup2(null, 0)
                    os.close(null)
                exec_command(find_executable(argv[0], env.get("PATH", "")), argv, env, user,
                             keep, seccomp_bpf)
            except MinirunError as e:
                chan.send_error(e.exit_code, str(e))
                os._exit(e.exit_code)
            except OSError as e:
                chan.send_error(126, f"exec {argv[0]!r}: {e.strerror}")
                os._exit(126)
        sock.close()

        forward_signals(inner, FORWARDED)
        _, status = os.waitpid(inner, 0)
        code = exit_code(status)
    except MinirunError as e:
        chan.send_error(e.exit_code, str(e))
        code = e.exit_code
    except BaseException as e:
        chan.send_error(125, f"exec failed: {e!r}")
    os._exit(code)
