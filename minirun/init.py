"""What a container's processes do between fork and exec, shared by the OCI init
(oci/child.py, which every `minirun run` and `minirun-oci create` starts) and by the
processes `exec` adds: the error frame, the fd sweep, the v1 cgroup self-join, lo,
the pty, the command's lookup (126/127) and its exec.
"""
from __future__ import annotations

import errno
import fcntl
import os
import signal
import _socket  # not socket.py (~3 ms to import): a socketpair end and an ioctl need none of it
import stat
import termios

from . import caps, faults
from . import kernel as k
from .errors import CommandNotExecutable, CommandNotFound, MinirunError
from .sync import Channel


def child_main(sock, plan, body) -> None:
    """Never returns: `body(chan, plan)` execs the command, or its error is reported up
    the socket with its exit code, which is also ours."""
    chan = Channel(sock)
    code = 125
    try:
        body(chan, plan)
    except MinirunError as e:
        code = e.exit_code
        chan.send_error(code, str(e))
    except BaseException as e:  # a bug: report it rather than hang the parent
        chan.send_error(125, f"container init failed: {e!r}")
    os._exit(code)


def _close_inherited_fds(keep: set[int]) -> None:
    """Close every fd >= 3 the caller of minirun left open, before anything resolves a
    path: a leaked directory fd lets `-w /proc/self/fd/N` escape (CVE-2024-21626)."""
    low = 3
    for fd in sorted(f for f in keep if f is not None and f >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)


def join_cgroup_v1(tasks_files) -> None:
    """Join the container's v1 cgroups ourselves, before anything else: "0" written to a
    hierarchy's `tasks` moves the writing thread without the kernel's global threadgroup
    lock, whose first writer waits for an RCU grace period (8-16 ms here, measured),
    which is what the parent's write of our PID to cgroup.procs costs. We are one thread
    (just forked), so the thread is the process."""
    for path in tasks_files:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        except OSError as e:
            raise MinirunError(f"joining the container's cgroup ({path}): "
                               f"{e.strerror}") from None


def _loopback_up() -> None:
    """`ip link set lo up` in the new namespace, with one ioctl instead of netlink."""
    import struct
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
    finally:
        s.close()


def _take_pty(chan: Channel, console: bool = True) -> None:
    """Open a pty of the container's own devpts, make it our controlling terminal (we must
    lead our own session), and send the master up to be relayed."""
    master, slave = os.openpty()
    chan.send_fd(master)
    os.close(master)
    if console:  # /dev/console is the container's terminal too, as in runc
        try:
            os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o600))
            k.kernel.mount(os.ttyname(slave), "/dev/console", None, k.MS_BIND)
        except (OSError, MinirunError):
            pass
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def find_executable(cmd: str, path: str) -> str:
    """Like execvp's lookup, but tells "not found" (127) from "not executable" (126)."""
    if "/" in cmd:
        candidates = [cmd]
    else:
        candidates = [os.path.join(d or ".", cmd) for d in path.split(":")]
    denied = None
    for c in candidates:
        try:
            st = os.stat(c)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            denied = denied or f"{c}: is a directory"
            continue
        if os.access(c, os.X_OK):
            return c
        denied = denied or f"{c}: permission denied"
    if denied:
        raise CommandNotExecutable(f"exec {cmd!r}: {denied}")
    if "/" in cmd:
        raise CommandNotFound(f"exec {cmd!r}: no such file or directory")
    raise CommandNotFound(f"exec {cmd!r}: executable file not found in $PATH")


def exec_command(path: str, argv: list[str], env: dict[str, str],
                 user: tuple[int, int] | None, keep: list[str],
                 seccomp_bpf: bytes | None = None, groups=()) -> None:
    """Become the command (run's PID 1 and exec's process alike): bounding set, user,
    capabilities, no inherited fd, the seccomp filter (last: from here on only what the
    filter allows), exec. Raises 126/127 errors if the exec fails."""
    caps.drop_bounding(keep)
    if user:
        uid, gid = user
        os.setgroups([gid, *groups])
        os.setgid(gid)
        os.setuid(uid)  # a non-root uid loses all capabilities here
    caps.limit(keep)
    k.kernel.cloexec_from(3)  # no host fd reaches the command (CVE-2024-21626)
    if seccomp_bpf is not None:  # after no_new_privs (caps.limit), right before execve
        k.kernel.seccomp_load_bpf(seccomp_bpf)
    faults.phase("child: execve")
    execve(path, argv, env)


def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
    """The exec itself (minirun's and minirun-oci's): its failure as a 126/127 error."""
    try:
        os.execve(path, argv, env)
    except OSError as e:
        cls = CommandNotFound if e.errno == errno.ENOENT else CommandNotExecutable
        raise cls(f"exec {argv[0]!r}: {e.strerror}") from None


def exit_code(status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128+N for signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def forward_signals(pid: int, signals) -> None:
    """Pass every one of `signals` we receive on to `pid`."""
    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in signals:
        try:
            signal.signal(sig, forward)
        except (OSError, ValueError):
            pass
