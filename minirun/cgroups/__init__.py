"""Resource limits: each container gets its own cgroup, made before PID 1 runs any user code.

    run:    cg.create (a journal step)  mkdir <mount>/minirun-<root tag>/<container id>
                                        in each hierarchy (v1) or once (v2), tag it,
                                        write every limit
            after fork, before GO       PID 1 moves in: on v1 by itself, first thing
                                        (init.join_cgroup_v1), on v2 moved by launch.py;
                                        after GO it unshares a cgroup namespace
                                        (oci/child.py), so /proc/self/cgroup shows "/"
    exec:   the new process moves in, then joins the cgroup namespace (execute.py)
    finish: the cgroup's own OOM counter is read (record.oom_killed), then the undo
            kills whatever is still inside and removes the directories

Ownership: a container's directory carries the xattr `trusted.minirun` =
"<root tag>:<container id>" (and its inode is recorded once made); it sits
under minirun's own per-root directory and is named by the random 64-hex id.
The undo removes only a directory that proves to be ours; `system prune`
sweeps this root's directories that no record accounts for.

Two small backends with one interface (Group): v1.py (a directory per
controller hierarchy; this machine) and v2.py (one directory, the unified
hierarchy). A hybrid host (v1 controllers plus an empty cgroup2 "unified"
mount) is v1.
"""
from __future__ import annotations

import errno
import os
import re
import time

from ..failures import Failure

MOUNT = "/sys/fs/cgroup"
XATTR = "trusted.minirun"
STEP = "cg.create"
V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "freezer")
V2_CONTROLLERS = ("cpu", "cpuset", "io", "memory", "pids")
_ID = re.compile(r"[0-9a-f]{64}")
CPU_PERIOD_US = 100000


def shares_to_weight(shares: int) -> int:
    """v1 cpu.shares (2..262144) -> v2 cpu.weight (1..10000), runc's conversion."""
    return 1 + ((shares - 2) * 9999) // 262142


def weight_to_shares(weight: int) -> int:
    """v2 cpu.weight -> v1 cpu.shares, the inverse of shares_to_weight."""
    return 2 + ((weight - 1) * 262142) // 9999


def parent_name(tag: str) -> str:
    """minirun's own directory for one state root, in each hierarchy."""
    return f"minirun-{tag}"


# -- what is mounted ----------------------------------------------------------

class Layout:
    """The cgroup hierarchies minirun uses: version 1 (hierarchies: mount point ->
    controllers) or 2 (one mount point)."""

    def __init__(self, version: int, hierarchies: dict[str, tuple[str, ...]]):
        self.version, self.hierarchies = version, hierarchies

    def group(self, tag: str, cid: str) -> "Group":
        dirs = [[list(ctrls), os.path.join(m, parent_name(tag), cid)]
                for m, ctrls in self.hierarchies.items()]
        return group_of(self.version, dirs)


def detect(mountinfo: str = "/proc/self/mountinfo", mount: str = MOUNT) -> Layout | None:
    """v2 if `mount` is a cgroup2 file system; else v1 if controller hierarchies are
    mounted (an empty cgroup2 "unified" beside them is ignored); else None."""
    try:
        with open(mountinfo) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    v1: dict[str, tuple[str, ...]] = {}
    for line in lines:
        pre, _, post = line.partition(" - ")
        fields, rest = pre.split(), post.split()
        if len(fields) < 5 or len(rest) < 3:
            continue
        point, fstype = fields[4], rest[0]
        if fstype == "cgroup2" and point == mount:
            return Layout(2, {point: V2_CONTROLLERS})
        if fstype == "cgroup" and point.startswith(mount + "/"):
            ctrls = tuple(c for c in rest[2].split(",") if c in V1_CONTROLLERS)
            if ctrls:
                v1[point] = ctrls
    return Layout(1, v1) if v1 else None


# -- one container's cgroup ------------------------------------------------------

class Group:
    """One container's cgroup: `dirs` is [[controllers], path] per hierarchy."""
    version = 0

    def __init__(self, dirs: list):
        self.dirs = [(tuple(c), p) for c, p in dirs]

    def dir_for(self, controller: str) -> str | None:
        for ctrls, path in self.dirs:
            if controller in ctrls:
                return path
        return None

    # backends implement:
    def create(self, res, tag: str) -> None: ...          # mkdir, tag, write limits
    def oom_kills(self) -> int | None: ...
    def stats(self) -> dict: ...
    def kill_file(self) -> str | None:                     # v2's cgroup.kill
        return None
    def set_frozen(self, on: bool) -> None: ...            # freezer: ask (un)freeze
    def frozen(self) -> bool | None: ...                   # done? None: no freezer

    def add(self, pid: int) -> None:
        for _c, path in self.dirs:
            write(path, "cgroup.procs", str(pid))

    def pids(self) -> set[int]:
        out: set[int] = set()
        for _c, path in self.dirs:
            try:
                out |= {int(p) for p in read(path, "cgroup.procs").split()}
            except OSError:
                pass
        return out


def group_of(version: int, dirs: list) -> Group:
    if version == 2:
        from .v2 import V2Group
        return V2Group(dirs)
    from .v1 import V1Group
    return V1Group(dirs)


# -- small file helpers (every backend writes through these) -------------------

def read(d: str, name: str) -> str:
    with open(os.path.join(d, name)) as f:
        return f.read()


def write(d: str, name: str, value: str) -> None:
    from .. import oplog
    path = os.path.join(d, name)
    oplog.record(f"echo {value} > {path}")
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        from ..errors import MinirunError
        raise MinirunError(f"cannot write {value!r} to {path}: {e.strerror}") from None


def write_optional(d: str, name: str, value: str) -> bool:
    """Write a file some kernels lack (swap limits without swap accounting): False if
    it is not there."""
    from ..errors import MinirunError
    if not os.path.isdir(d):
        raise FileNotFoundError(d)
    try:
        write(d, name, value)
        return True
    except MinirunError:
        if os.path.exists(os.path.join(d, name)):
            raise
        return False


def keyed(text: str) -> dict[str, int]:
    """"key N" lines (memory.stat, memory.events, cpu.stat) as a dict."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _why(path: str, what: str) -> str | None:
    """One `# why` per directory kind, not one per v1 hierarchy: it goes with the `cpu`
    hierarchy's directory (v1), or with the one directory (v2)."""
    top = os.path.relpath(path, MOUNT).split("/")[0]
    return what if top in ("cpu", "cpu,cpuacct") or top.startswith("minirun-") else None


def make_dir(path: str, tag: str) -> int:
    """mkdir a cgroup and tag it; returns its inode. Raises FileExistsError."""
    from .. import oplog
    if os.path.basename(path).startswith("minirun-"):
        why = "minirun's directory for this state root's containers (goes with the last)"
    else:
        why = "the container's cgroup (on cgroup v1, one directory in each hierarchy)"
    oplog.record(f"mkdir {path}", why=_why(path, why))
    os.mkdir(path)
    try:
        os.setxattr(path, XATTR, tag.encode())
    except OSError as e:
        if e.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    return os.stat(path).st_ino


def ensure_parent(path: str, tag: str) -> bool:
    """minirun's per-root directory; True if this call made it."""
    try:
        make_dir(path, tag)
        return True
    except FileExistsError:
        return False


# -- the journal step and its undo ----------------------------------------------

def create(c) -> None:
    """Make the container's cgroup and write its limits (a journal step), or nothing if
    the host has no cgroups and no limit was asked for."""
    from .. import journal, oplog
    from ..errors import MinirunError
    if oplog.skip():  # --explain=only: not planned (see oplog.isolate_files)
        return
    layout = detect()
    res = c.config.resources
    if layout is None:
        if res.any():
            raise MinirunError(f"resource limits need cgroups, and none are mounted at {MOUNT}")
        return
    tag = c.paths.owner_tag
    g = layout.group(tag, c.id)
    with journal.step(c, STEP, version=layout.version, tag=f"{tag}:{c.id}",
                      dirs=[[list(ctrls), p] for ctrls, p in g.dirs]) as intent:
        intent["inodes"] = g.create(res, tag)


def group(c) -> Group | None:
    """The container's cgroup, from its journal."""
    for s in c.journal:
        if s.kind == STEP:
            return group_of(s.intent["version"], s.intent["dirs"])
    return None


def join(c, pid: int) -> None:
    """Move `pid` into the container's cgroup (PID 1 before GO; an exec'd process)."""
    g = group(c)
    if g is not None:
        g.add(pid)


def freeze(c, on: bool, timeout: float = 10) -> None:
    """`pause` / `unpause`: (un)freeze every process of the container with the cgroup
    freezer, and wait until the kernel says it is done (freezing is not instant: each
    task stops at its next return to user space)."""
    from ..errors import MinirunError
    g = group(c)
    if g is None or g.frozen() is None:
        raise MinirunError("pause needs the cgroup freezer, which is not available here")
    g.set_frozen(on)
    deadline = time.monotonic() + timeout
    while g.frozen() != on:
        if time.monotonic() > deadline:
            if on:
                g.set_frozen(False)  # a half-frozen container is worse than none
            raise MinirunError(f"the cgroup freezer did not {'freeze' if on else 'thaw'} "
                               f"the container within {timeout:g} s")
        time.sleep(0.005)


def thaw(c) -> None:
    """Before any signal or teardown of a paused container: a frozen task does not
    even die of SIGKILL until it is thawed. Best effort (the cgroup may be gone)."""
    g = group(c)
    try:
        if g is not None and g.frozen():
            freeze(c, False)
    except Exception:  # noqa: BLE001 - the teardown reports what stays
        pass


def oom_killed(c) -> bool:
    """Whether the OOM killer killed a process of the container: the cgroup's own counter."""
    g = group(c)
    if g is None:
        return False
    try:
        return bool(g.oom_kills())
    except OSError:
        return False


def _proof(path: str, want: str, inode: int | None) -> str:
    """"gone", "ours", "unproven" (no tag, no inode: a crash between mkdir and the tag)
    or why it is not ours."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "gone"
    try:
        got = os.getxattr(path, XATTR).decode()
    except OSError:
        got = None
    if got is not None:
        return "ours" if got == want else f"tagged {got!r}, not {want!r}"
    if inode is not None:
        return "ours" if st.st_ino == inode else "another directory of that name"
    return "unproven"


def undo(c, steps) -> list[Failure]:
    failures: list[Failure] = []
    tag = c.paths.owner_tag
    for s in steps:
        if s.kind != STEP:
            failures.append(Failure("undo", s.kind, "unknown kind of step"))
            continue
        want = f"{tag}:{c.id}"
        inodes = s.intent.get("inodes") or {}
        dirs = []
        for ctrls, path in s.intent["dirs"]:
            # the path itself must be <mount>/minirun-<our tag>/<this container's id>
            if (os.path.basename(path) != c.id
                    or os.path.basename(os.path.dirname(path)) != parent_name(tag)):
                failures.append(Failure("rmdir", path, "not a cgroup path of this container"))
                continue
            dirs.append((ctrls, path, _proof(path, want, inodes.get(path))))
        failures += remove_group(s.intent["version"], dirs, tag)
    return failures


def remove_group(version: int, dirs: list, tag: str, timeout: float = 5) -> list[Failure]:
    """Kill what is left in the proven directories, rmdir them, then minirun's per-root
    parents if they are empty."""
    failures = []
    ours = [[list(c), p] for c, p, proof in dirs if proof == "ours"]
    for _c, p, proof in dirs:
        if proof not in ("ours", "gone", "unproven"):
            failures.append(Failure("rmdir", p, f"left alone: {proof}"))
    if ours:
        failures += kill_all(group_of(version, ours))
    deadline = time.monotonic() + timeout
    for _c, p, proof in dirs:
        if proof not in ("ours", "unproven"):
            continue
        failures += _rmdir(p, deadline, quiet=proof == "unproven")
    for _c, p, _proof_ in dirs:
        rmdir_parent(os.path.dirname(p), tag)
    return failures


def kill_all(g: Group) -> list[Failure]:
    """SIGKILL every process still in the cgroup (exec'd processes, their joiners):
    v2's cgroup.kill, else each PID through a pidfd, checked to be in the cgroup."""
    import signal
    kf = g.kill_file()
    if kf is not None:
        try:
            with open(kf, "w") as f:
                f.write("1")
            return []
        except OSError:
            pass
    rels = {"/" + "/".join(p.rsplit("/", 2)[-2:]) for _c, p in g.dirs}  # /minirun-T/ID
    for pid in g.pids():
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            continue
        try:
            # the pidfd pins the process: check it is (still) one of ours, then kill it
            with open(f"/proc/{pid}/cgroup") as f:
                mine = f.read()
            if any(line.endswith(r) for line in mine.splitlines() for r in rels):
                signal.pidfd_send_signal(fd, signal.SIGKILL)
        except OSError:
            pass
        finally:
            os.close(fd)
    return []


def _rmdir(path: str, deadline: float, quiet: bool = False) -> list[Failure]:
    from .. import oplog
    oplog.record(f"rmdir {path}", why=_why(path, "the container's cgroup goes (each "
                                           "hierarchy's directory)"))
    while True:
        try:
            os.rmdir(path)
            return []
        except FileNotFoundError:
            return []
        except OSError as e:
            # EBUSY: a process killed a moment ago has not left yet
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                return [] if quiet else [Failure("rmdir", path, e.strerror or str(e))]
        time.sleep(0.01)


def rmdir_parent(path: str, tag: str) -> None:
    """minirun's per-root directory goes with its last container (if it is ours and
    empty; a concurrent start re-creates it)."""
    try:
        if os.getxattr(path, XATTR).decode() != tag:
            return
    except OSError as e:
        if e.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENODATA):
            return
        if os.path.basename(path) != parent_name(tag):
            return
    try:
        os.rmdir(path)
    except OSError:
        pass  # not empty (another container), or gone


def prune(paths, live: set[str]) -> list[Failure]:
    """`system prune`: this root's container cgroups that no record accounts for."""
    layout = detect()
    if layout is None:
        return []
    tag = paths.owner_tag
    failures = []
    orphans: dict[str, list] = {}
    for m, ctrls in layout.hierarchies.items():
        base = os.path.join(m, parent_name(tag))
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for n in names:
            p = os.path.join(base, n)
            if _ID.fullmatch(n) and n not in live and os.path.isdir(p):
                proof = _proof(p, f"{tag}:{n}", None)
                if proof in ("ours", "unproven"):  # another's is no orphan of ours
                    orphans.setdefault(n, []).append((ctrls, p, proof))
    for cid, dirs in orphans.items():
        failures += remove_group(layout.version, dirs, tag)
    for m in layout.hierarchies:
        rmdir_parent(os.path.join(m, parent_name(tag)), tag)
    return failures
