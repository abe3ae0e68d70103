"""The child side: what the container's first process does between fork and exec.

Runs in the process that becomes PID 1 of the new PID namespace. It talks to
the parent (launch.py) over a socketpair; the messages are named in sync.py.
"""
from __future__ import annotations

import errno
import fcntl
import os
import signal
import _socket  # not socket.py (~3 ms to import): a socketpair end and an ioctl need none of it
import stat
import termios
from typing import NamedTuple

from . import caps, faults
from . import kernel as k
from .errors import CommandNotExecutable, CommandNotFound, MinirunError
from .sync import GO, NS, Channel
from .rootfs import MountStep, RootFS, make_root_readonly, pivot_into


class ChildPlan(NamedTuple):
    lower: str                     # the user's rootfs (never written)
    upper: str
    work: str
    merged: str
    unshare_flags: int
    hostname: str
    steps: list[MountStep]
    argv: list[str]
    env: dict[str, str]
    workdir: str = "/"
    user: tuple[int, int] | None = None
    caps: list[str] = []   # never mutated
    read_only: bool = False
    tty: bool = False
    init: bool = False              # --init without catatonit: this module's own init
    init_path: str | None = None    # --init: catatonit, bound in by the mount plan
    groups: list[int] = []          # supplementary groups (-u NAME); never mutated
    join_netns_fd: int | None = None
    stdin_fd: int | None = None     # None: keep fd 0; else dup2 onto 0
    output_fd: int | None = None    # the log writer's pipe (monitor.c), for fd 1 (and 2)
    error_fd: int | None = None     # its other pipe, for fd 2 (stderr logged apart)
    cgroupns: bool = False          # in a cgroup of our own before GO (ours or the parent's move)
    cgroup_tasks: tuple[str, ...] = ()  # cgroup v1: the `tasks` files we join ourselves
    seccomp_bpf: bytes | None = None  # the filter loaded right before execve (seccomp.py)


def child_main(sock, plan: ChildPlan, body=None) -> None:
    """Never returns: execs the command or exits with the code it reported. `body`
    (chan, plan) is the work ([_run]; minirun-oci's init passes its own)."""
    chan = Channel(sock)
    code = 125
    try:
        (body or _run)(chan, plan)
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


def _run(chan: Channel, plan: ChildPlan) -> None:
    kern = k.kernel
    _close_inherited_fds({chan.sock.fileno(), plan.stdin_fd, plan.output_fd,
                          plan.error_fd, plan.join_netns_fd, faults.phase_fd})
    os.setsid()  # our own session: terminal signals reach the parent, which forwards them
    faults.phase("child: started")
    join_cgroup_v1(plan.cgroup_tasks)
    setup(plan, kern, ns_ready=lambda: _namespaces_ready(chan, plan))
    faults.phase("child: mounted, pivoted")

    if chan.recv() != GO:
        os._exit(125)  # the parent gave up or died: it reports, not us
    faults.phase("child: go received")
    if plan.cgroupns:
        # We are in the container's cgroup now: it becomes the root of our view
        # (/proc/self/cgroup shows "/").
        kern.unshare(k.CLONE_NEWCGROUP)

    if plan.tty:
        _take_pty(chan)
    else:
        if plan.stdin_fd is not None:
            os.dup2(plan.stdin_fd, 0)
        if plan.output_fd is not None:
            os.dup2(plan.output_fd, 1)
            os.dup2(plan.output_fd if plan.error_fd is None else plan.error_fd, 2)
    _enter_workdir(plan)
    path = find_executable(plan.argv[0], plan.env.get("PATH", ""))
    if plan.init_path:  # catatonit as PID 1, filtered like the command it starts
        exec_command(plan.init_path, [plan.init_path, "--", *plan.argv], plan.env,
                     plan.user, plan.caps, plan.seccomp_bpf, plan.groups)
    if plan.init:
        _init_then_exec(chan, plan, path)
    _exec(plan, path)


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


def setup(plan: ChildPlan, kern, ns_ready=lambda: None) -> None:
    """The container's namespaces and root file system, in this order, every kernel
    operation through `kern` (unit tests pass a recording fake): unshare, join a shared
    network namespace, `ns_ready()`, make / private, mount the overlay, apply the mount
    plan, pivot_root and detach the old root, --read-only, set the hostname."""
    kern.unshare(plan.unshare_flags)
    if plan.join_netns_fd is not None:
        kern.setns(plan.join_netns_fd, k.CLONE_NEWNET, "network namespace")
        os.close(plan.join_netns_fd)
    ns_ready()

    # Nothing we mount may propagate back to the host.
    kern.mount(None, "/", None, k.MS_REC | k.MS_PRIVATE)
    # nodev: a device node shipped in the image must not open a host device (there is
    # no device cgroup); /dev is a tmpfs of its own with only the safe nodes.
    kern.mount("overlay", plan.merged, "overlay", k.MS_NODEV,
               f"lowerdir={plan.lower},upperdir={plan.upper},workdir={plan.work}",
               display=plan.merged)
    root = RootFS(plan.merged, kern)
    try:
        root.apply(plan.steps)
    finally:
        root.close()
    pivot_into(plan.merged, kern)
    if plan.read_only:  # the rootfs and the /etc files; not /dev, /proc or rw volumes
        make_root_readonly(kern, plan.steps)
    kern.sethostname(plan.hostname)


def _namespaces_ready(chan: Channel, plan: ChildPlan) -> None:
    """The namespaces exist: bring lo up, allow ping, let the parent attach the network."""
    if plan.unshare_flags & k.CLONE_NEWNET:
        _loopback_up()
    # ping without CAP_NET_RAW: let every group open ICMP datagram sockets (podman does too).
    if plan.unshare_flags & k.CLONE_NEWNET or plan.join_netns_fd is not None:
        _write_quiet("/proc/sys/net/ipv4/ping_group_range", "0 2147483647")
    chan.send(NS)


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


def _write_quiet(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError:
        pass


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


def _enter_workdir(plan: ChildPlan) -> None:
    try:
        os.makedirs(plan.workdir, exist_ok=True)
        os.chdir(plan.workdir)
        cwd = os.getcwd()
    except OSError as e:
        raise MinirunError(f"cannot enter working directory {plan.workdir}: {e.strerror}") from None
    if not cwd.startswith("/"):  # "(unreachable)/...": outside the container's root
        raise MinirunError(f"working directory {plan.workdir} is outside the container")


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


def _exec(plan: ChildPlan, path: str) -> None:
    exec_command(path, plan.argv, plan.env, plan.user, plan.caps, plan.seccomp_bpf,
                 plan.groups)


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


def _init_then_exec(chan: Channel, plan: ChildPlan, path: str) -> None:
    """--init: stay as a tiny PID 1 that reaps zombies and forwards signals to the command."""
    child = os.fork()
    if child == 0:
        try:
            _exec(plan, path)
        except MinirunError as e:
            chan.send_error(e.exit_code, str(e))
            os._exit(e.exit_code)
    chan.sock.close()  # the parent sees EOF once the command has exec'd
    caps.drop_bounding([])
    if plan.seccomp_bpf is not None:  # the init stays in the container: filtered too
        k.kernel.seccomp_load_bpf(plan.seccomp_bpf)
    forward_signals(child, signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP,
                                                      signal.SIGCHLD})
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == child:
            os._exit(exit_code(status))
