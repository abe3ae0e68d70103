"""The container's init between fork and exec, driven by config.json.

    join the v1 cgroups we are given (cgroup_tasks), take the front end's stdio,
    join the namespaces given by path (setns), unshare the new ones, lo up  -- NS -->
                       the runtime moves us into the cgroup, runs createRuntime hooks
    <-- GO --  unshare the cgroup namespace, make / private, bind the root onto itself
               (or mount the overlay the annotation OVERLAY describes there),
               the mounts of config.json (rootfs.py: every target opened below the root),
               the default /dev, linux.devices, createContainer hooks, pivot_root,
               rootfsPropagation, read-only root, sysctl, masked and read-only
               paths, hostname,
               the pty (its master to --console-socket), enter process.cwd and
               find the program (a 126/127 error fails create)   -- READY -->
    block reading the exec fifo                 ...  `start` writes one byte into it
    startContainer hooks, then process.become (the user's program); its exec closes
    the execd fifo, which `start` reads to the end before the poststart hooks

The messages are those of sync.py, plus READY; an error line carries the exit code.
After READY the runtime may be gone: a failure is written to the init's stderr (the
engine's log of the container) and it exits with its code.

`minirun run` drives this same init in-process (oci/create.py's FrontEnd): its
bundle's config.json is parsed by the same code, and it adds only what a front end
hands over: its stdio, a console socketpair, the v1 cgroups the init joins itself.
Two annotations carry what OCI has no field for: OVERLAY (the image layers, the
container's upper and work directories: overlayfs options) and DEVICES ("host":
--privileged's copy of the host's devices into the container's /dev).
"""
from __future__ import annotations

import json
import os
import signal
import _socket  # not socket.py (~3 ms to import on `minirun run`'s path)
import stat
from ..tuples import NamedTuple

from .. import faults
from .. import kernel as k
from ..errors import MinirunError, SyscallError
from ..init import _close_inherited_fds, _loopback_up, _take_pty, join_cgroup_v1
from ..rootfs import MountStep, RootFS, make_mount_readonly, pivot_into
from ..sync import GO, NS, Channel
from . import hooks
from .config import Spec
from .process import become, enter_cwd  # here: nothing can be imported after pivot_root

READY = "ready"
OVERLAY = "io.github.minirun.overlay"   # lowerdir=...,upperdir=...,workdir=...
DEVICES = "io.github.minirun.devices"   # "host": --privileged
INIT = "io.github.minirun.init"         # "true": args are INIT -- COMMAND... (run --init)


class Plan(NamedTuple):
    spec: Spec
    fifo_fd: int                 # the exec fifo, opened read-write (see create.py)
    execd_fd: int                # the execd fifo: close-on-exec, its end tells `start`
    console_fd: int | None       # connected to --console-socket
    join_fds: dict               # namespace type -> fd of its path (not pid)
    seccomp_bpf: bytes | None
    no_pivot: bool
    state: dict                  # the state JSON for the hooks run in here (sent before GO)
    stdio: tuple = (None, None, None)  # a front end's fds for 0, 1, 2 (None: inherited)
    cgroup_tasks: tuple = ()     # cgroup v1: the `tasks` files we join ourselves
    name: str = "minirun-oci"    # who speaks in a failure after READY (on our stderr)
    die_with_front: bool = False  # a front end's init: killed if it dies before `start`


def child_main(sock, plan: Plan) -> None:
    """Never returns: minirun's own init frame (errors reported up the socket) around
    the OCI init's work."""
    from ..init import child_main as frame
    frame(sock, plan, _run)


def _run(chan: Channel, plan: Plan) -> None:
    spec = plan.spec
    _close_inherited_fds({chan.sock.fileno(), plan.fifo_fd, plan.execd_fd,
                          plan.console_fd, *plan.stdio, faults.phase_fd,
                          *plan.join_fds.values()})
    os.setsid()  # our own session: terminal signals reach the front end, which forwards
    kern = k.kernel
    if plan.die_with_front:
        # An engine's create exits after READY and we wait for its `start`; a front end
        # that dies before its start never sends it: do not wait forever (until the exec)
        kern.set_parent_death_signal(signal.SIGKILL)
    faults.phase("child: started")
    join_cgroup_v1(plan.cgroup_tasks)
    for target, fd in enumerate(plan.stdio):
        if fd is not None:
            os.dup2(fd, target)
    for t, fd in plan.join_fds.items():
        from .config import NAMESPACES
        kern.setns(fd, NAMESPACES[t], f"{t} namespace")
        os.close(fd)
    kern.unshare(spec.ns_flags() & ~k.CLONE_NEWCGROUP)
    if "network" in spec.new_namespaces():
        _loopback_up()  # a new network namespace's lo is down; runc brings it up too
    chan.send(NS)
    line = chan.recv()   # the state the hooks in here read (with our PID), then GO
    state = json.loads(line) if line and line.startswith("{") else {}
    if chan.recv() != GO:
        os._exit(125)
    faults.phase("child: go received")
    plan = plan._replace(state=state)
    if spec.process.rlimits:  # set_rlimits' module: nothing can be imported after pivot_root
        __import__("resource")
    own_cgroups = _own_cgroups()
    if "cgroup" in spec.new_namespaces():
        kern.unshare(k.CLONE_NEWCGROUP)
    setup_rootfs(spec, kern, own_cgroups, plan)
    faults.phase("child: mounted, pivoted")
    if plan.console_fd is not None:
        console = _socket.socket(fileno=plan.console_fd)
        _take_pty(Channel(console))
        console.close()
    path = enter_cwd(spec.process, spec.annotations.get(INIT) == "true")
    chan.send(READY)
    # Held until `start`: we hold the fifo's only write end too, so the read waits for
    # `start`'s byte instead of returning at once (the fd is close-on-exec).
    try:
        got = os.read(plan.fifo_fd, 1)
    except OSError:
        got = b""
    os.close(plan.fifo_fd)
    chan.sock.close()
    if not got:
        os._exit(1)
    if plan.die_with_front:  # started: from here on we outlive the front end, as ever
        kern.set_parent_death_signal(0)
    try:
        hooks.run_in_child(spec.hooks.get("startContainer", ()), "startContainer",
                           dict(plan.state, status="running"))
        become(spec.process, plan.seccomp_bpf, path)
    except MinirunError as e:
        _say(plan.name, str(e))
        os._exit(e.exit_code)
    except BaseException as e:  # noqa: BLE001 - nobody else is left to tell
        _say(plan.name, f"container init: {e!r}")
        os._exit(125)


def _say(name: str, msg: str) -> None:
    try:
        os.write(2, f"{name}: {msg}\n".encode())
    except OSError:
        pass


def setup_rootfs(spec: Spec, kern, own_cgroups: dict, plan: Plan) -> None:
    # Nothing of the container's may propagate back to the host, pivot_root refuses a
    # shared parent, and a bind from an unbindable mount fails: so every mount is made
    # private first (slave, if a slave root was asked for: the host's mounts still come
    # in), and rootfsPropagation is set on the new root once pivot_root is done.
    kern.mount(None, "/", None, (k.MS_SLAVE if spec.propagation & k.MS_SLAVE
                                 else k.MS_PRIVATE) | k.MS_REC)
    overlay = spec.annotations.get(OVERLAY)
    if overlay:
        # nodev: a device node shipped in an image must not open a host device
        kern.mount("overlay", spec.root, "overlay", k.MS_NODEV, overlay, display=spec.root)
    else:  # pivot_root needs the root to be a mount point of its own
        kern.mount(spec.root, spec.root, None, k.MS_BIND | k.MS_REC)
    root = RootFS(spec.root, kern)
    try:
        root.apply(mount_steps(spec, own_cgroups))
        if spec.devices:
            make_devices(root, spec.devices)
    finally:
        root.close()
    hooks.run_in_child(spec.hooks.get("createContainer", ()), "createContainer",
                       dict(plan.state, status="created"))
    if plan.no_pivot:
        os.chdir(spec.root)
        kern.mount(spec.root, "/", None, k.MS_MOVE)
        os.chroot(".")
        os.chdir("/")
    else:
        pivot_into(spec.root, kern)
    if spec.propagation_set:
        kern.mount(None, "/", None, spec.propagation)
    if spec.readonly:  # the root mount only, keeping its other flags (nodev...)
        make_mount_readonly(kern, "/")
    for key, value in spec.sysctl.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as e:
            raise MinirunError(f"sysctl {key}={value}: {e.strerror}") from None
    # after the sysctls, which /proc/sys read-only would refuse
    root = RootFS("/", kern)
    try:
        root.apply([MountStep(p, kind="mask", optional=True) for p in spec.masked]
                   + [MountStep(p, kind="readonly", optional=True)
                      for p in spec.readonly_paths])
    finally:
        root.close()
    if spec.hostname is not None:
        kern.sethostname(spec.hostname)


def mount_steps(spec: Spec, own_cgroups: dict) -> list[MountStep]:
    """config.json's mounts as rootfs.py's steps; the default devices go into a /dev
    that is a tmpfs of the container's."""
    steps = []
    for m in spec.mounts:
        if m.type == "bind":
            src = m.source if m.source.startswith("/") else os.path.join(spec.bundle,
                                                                         m.source)
            try:
                kind = "dir" if stat.S_ISDIR(os.stat(src).st_mode) else "file"
            except OSError as e:
                raise MinirunError(f"mount source {src}: {e.strerror}") from None
            steps.append(MountStep(m.destination, source=src, flags=m.flags, kind=kind,
                                   propagation=m.propagation))
        elif m.type in ("cgroup", "cgroup2"):
            steps += cgroup_steps(m, own_cgroups)
        else:
            steps.append(MountStep(m.destination, m.type, m.source or m.type, m.flags,
                                   m.data, propagation=m.propagation))
            if m.destination == "/dev" and m.type == "tmpfs":
                steps.append(MountStep("/dev", kind="devices",
                                       data=spec.annotations.get(DEVICES)))
    return steps


def _own_cgroups() -> dict:
    """This process's cgroup in each hierarchy, keyed by its controllers ("" for v2)."""
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _n, ctrls, path = line.rstrip("\n").split(":", 2)
            out[ctrls] = path
    return out


def cgroup_steps(m, own: dict) -> list[MountStep]:
    """A cgroup mount: on v1 a tmpfs with each hierarchy's directory of the container
    bound into it, as runc does; on v2 the container's directory. Read-only if asked."""
    from ..cgroups import detect
    layout = detect()
    flags = m.flags & (k.MS_RDONLY | k.MS_NOSUID | k.MS_NODEV | k.MS_NOEXEC)
    if layout is None:
        raise MinirunError(f"cannot mount cgroup on {m.destination}: no cgroups here")
    if layout.version == 2:
        return [MountStep(m.destination, source="/sys/fs/cgroup" + own.get("", "/"),
                          flags=k.MS_BIND | k.MS_REC | flags)]
    steps = [MountStep(m.destination, "tmpfs", "cgroup",
                       k.MS_NOSUID | k.MS_NODEV | k.MS_NOEXEC, "mode=755")]
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    for line in lines:
        pre, _, post = line.partition(" - ")
        rest = post.split()
        point = pre.split()[4]
        if len(rest) < 3 or rest[0] != "cgroup" or not point.startswith("/sys/fs/cgroup/"):
            continue
        opts = set(rest[2].split(","))
        path = next((p for c, p in own.items() if c and set(c.split(",")) <= opts), None)
        if path is None:
            continue
        steps.append(MountStep(os.path.join(m.destination, os.path.basename(point)),
                               source=point + path,
                               flags=k.MS_BIND | k.MS_REC | flags))
    if flags & k.MS_RDONLY:
        steps.append(MountStep(m.destination, kind="readonly"))
    return steps


def make_devices(root: RootFS, devices) -> None:
    kinds = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
    for d in devices:
        parent = os.path.dirname(d.path)
        pfd = root.ensure(parent, "dir")
        dirfd = os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        os.close(pfd)
        name = os.path.basename(d.path)
        try:
            try:
                os.unlink(name, dir_fd=dirfd)
            except FileNotFoundError:
                pass
            old = os.umask(0)
            try:
                os.mknod(name, kinds[d.type] | (d.mode & 0o7777),
                         os.makedev(d.major, d.minor), dir_fd=dirfd)
            finally:
                os.umask(old)
            os.chown(name, d.uid, d.gid, dir_fd=dirfd, follow_symlinks=False)
        except OSError as e:
            raise SyscallError.from_oserror("mknod", d.path, e) from None
        finally:
            os.close(dirfd)
