"""The operation log: every host-side change, described as the shell command that does the same.

Mechanism layers (netlink, firewall, sysctls, the netns name, signals) call
`record()` with the equivalent command line and a few words on why
(`ip link add ...`, `nft -f - <<'EOF' ...`). Nothing is printed unless a
listener is installed (`minirun --explain`), so the cost when unused is a
test of an empty list.

`--explain` prints each change as a `# why` comment line followed by the
command, heredocs unindented: the output pasted into a root shell does the
same thing again (tests/e2e/test_explain.py replays it in a second host and
compares the kernel state).

`--explain=only` (`dry_run`) is a plan, not a run: the mechanism layers record
their command and skip the side effect (`skip()`), PID 1 is never forked
(its PID shows as `$PID`), and the files a run writes -- record, lease, port
reservation, journal -- land in a throwaway overlay of the state directories
in a private mount namespace (`isolate_files`), so the address shown is the
one the allocator would pick, and nothing is left anywhere.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
TYPE_CHECKING = False  # typing costs ~3 ms of every start: for annotations only
if TYPE_CHECKING:
    from typing import TextIO

from .errors import MinirunError

_listeners: list[Callable[[str], None]] = []     # get the bare command
_explainers: list[Callable[[str, str | None], None]] = []  # get (command, why)

dry_run = False   # --explain=only: record, do not do
PID = "$PID"      # the container's PID in a plan (it does not exist)


class Planned(MinirunError):
    """Raised where a plan (--explain=only) ends: before PID 1 would run its command."""

    exit_code = 0


def listening() -> bool:
    return bool(_listeners or _explainers)


def skip() -> bool:
    """True when the side effect just recorded must not be made (--explain=only)."""
    return dry_run


def pid_text(pid) -> str:
    """A PID as shown in a command: `$PID` in a plan."""
    return PID if dry_run else str(pid)


_history: list[tuple[str, str | None]] = []  # while explaining: what was recorded so far


def record(command: str, why: str | None = None) -> None:
    """Note one host-side change as an equivalent shell command (and why it is made)."""
    if not (_listeners or _explainers):
        return
    if _explainers:
        _history.append((command, why))
    for listener in _listeners:
        listener(command)
    for explainer in _explainers:
        explainer(command, why)


def listen(listener: Callable[[str], None]) -> None:
    _listeners.append(listener)


def unlisten_all() -> None:
    """Nothing more is printed (a plan's rollback is not part of the plan)."""
    _listeners.clear()
    _explainers.clear()


def render(command: str, why: str | None) -> str:
    """`# why` above the command: valid shell, pasted as it is."""
    lines = [f"# {line}" for line in (why or "").splitlines()]
    return "\n".join(lines + [command]) + "\n"


class StreamLog:
    """Prints every recorded change as a shell command preceded by its `# why`."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def raw(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def __call__(self, command: str, why: str | None) -> None:
        self.raw(render(command, why))


def explain_to(stream: TextIO = sys.stderr) -> None:
    _explainers.append(StreamLog(stream))


class FileLog:
    """Appends every recorded change to a file (a container's explain.log)."""

    def __init__(self, path, header: str | None = None):
        self.path, self.header = str(path), header

    def raw(self, text: str) -> None:
        if self.header:
            text, self.header = self.header + text, None
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        except OSError:
            return  # the container's directory is gone (rm): nothing to keep it in
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)

    def __call__(self, command: str, why: str | None) -> None:
        self.raw(render(command, why))


def log_to(path, header: str | None = None, backlog: bool = False) -> FileLog:
    """Also append every recorded change to `path`; `header` (comment lines) goes before
    the first one, so the file gets nothing when nothing was changed. `backlog`: the
    changes this process recorded so far first."""
    log = FileLog(path, header)
    if backlog and _history:
        log.raw("".join(render(c, w) for c, w in _history))
    _explainers.append(log)
    return log


def stop_logging(log: FileLog) -> None:
    if log in _explainers:
        _explainers.remove(log)


def comment(text: str) -> str:
    """`text` as shell comment lines."""
    return "".join(f"# {line}\n" for line in text.splitlines())


def replay_from(path, offset: int, header: str | None = None) -> None:
    """Show what another process (a container's monitor) appended to `path` after
    `offset`, as if it had been recorded here (and append it to no other file)."""
    if not _explainers:
        return
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return
    if not text:
        return
    for explainer in _explainers:
        if isinstance(explainer, StreamLog):
            explainer.raw((header or "") + text)


def isolate_files(*dirs) -> None:
    """--explain=only: enter a private mount namespace in which each of `dirs` (the state
    root and the runroot; or their nearest existing parent) is an overlay whose writes
    go to a tmpfs. The plan runs the real allocator on the real leases, and every file
    written vanishes with this process: nothing is created on the host.

    The cgroup layer is not planned (cgroups.create returns at once in a plan): its
    steps read back what the kernel made (a new v1 cpuset's files), which a plan lacks."""
    from . import kernel as k
    targets = []
    for d in dirs:
        d = os.path.abspath(str(d))
        while not os.path.isdir(d):
            d = os.path.dirname(d)
        targets.append(d)
    # an overlay of a parent covers its children
    targets = sorted({t for t in targets
                      if not any(t != o and t.startswith(o.rstrip("/") + "/") for o in targets)})
    k.kernel.unshare(k.CLONE_NEWNS)
    k.kernel.mount(None, "/", None, k.MS_REC | k.MS_PRIVATE)
    for t in targets:
        lower = os.open(t, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            # the tmpfs covers t; the overlay on top reads t itself through the fd
            k.kernel.mount("minirun-plan", t, "tmpfs", 0, "mode=0755")
            os.mkdir(os.path.join(t, "upper"))
            os.mkdir(os.path.join(t, "work"))
            k.kernel.mount("minirun-plan", t, "overlay", 0,
                           f"lowerdir=/proc/self/fd/{lower},upperdir={t}/upper,"
                           f"workdir={t}/work")
        finally:
            os.close(lower)


def size_of(path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
