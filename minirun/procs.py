"""Processes: a container's, seen from both sides (`minirun top`), and one recorded process.

A process in a PID namespace has one PID per namespace level; the kernel lists
them all in the `NSpid` line of /proc/PID/status (host first, container last).

A recorded process is a PID *and* its start time: a PID alone may have been
reused by the time we look, so liveness checks and signals use both (signals
through a pidfd).
"""
from __future__ import annotations

import os
import signal

from . import kernel as k
from .errors import MinirunError


def _ns_inode(pid: int | str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "uts", "user")


def host_reference() -> int:
    """Whose namespaces stand for the host's: PID 1's, or, where PID 1's cannot be read
    (a sandbox, a restricted /proc), minirun's own."""
    try:
        os.readlink("/proc/1/ns/net")
        return 1
    except OSError:
        return os.getpid()


def namespace_ids(pid: int, host_pid: int = 1) -> list[dict]:
    """The namespaces of `pid` beside those of `host_pid` (the host's: PID 1's), as
    /proc/PID/ns/* shows them (`net:[4026531840]`: the inode is the identity); `shared`
    when both are in the same one."""
    out = []
    for ns in NAMESPACES:
        ids = []
        for p in (pid, host_pid):
            try:
                ids.append(os.readlink(f"/proc/{p}/ns/{ns}"))
            except OSError:
                ids.append(None)
        out.append({"namespace": ns, "container": ids[0], "host": ids[1],
                    "shared": ids[0] is not None and ids[0] == ids[1]})
    return out


def _status(pid: str) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def container_processes(pid1: int) -> list[dict]:
    """Every process in the PID namespace of `pid1`: host PID, container PID, user, command."""
    import pwd
    target = _ns_inode(pid1)
    if target is None:
        return []
    rows = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or _ns_inode(entry) != target:
            continue
        try:
            st = _status(entry)
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        nspid = st.get("NSpid", entry).split()
        uid = int(st.get("Uid", "0").split()[0])
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
        rows.append({"host_pid": int(entry), "container_pid": int(nspid[-1]), "user": user,
                     "state": st.get("State", "?").split()[0],
                     "command": cmd or f"[{st.get('Name', '?')}]"})
    return sorted(rows, key=lambda r: r["container_pid"])


# -- one process, by PID and start time ---------------------------------------

def _stat_fields(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2:].split()  # fields from 3 (state) on


def proc_start_time(pid: int) -> int | None:
    """Start time of a process in clock ticks: tells a live PID from a reused one."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def process_alive(pid: int | None, start: int | None) -> bool:
    """The process that had this PID and start time still runs (a zombie does not:
    its parent died, and whoever inherited it has not reaped it yet)."""
    if not pid:
        return False
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] not in (b"Z", b"X") and int(fields[19]) == start


def pid_alive(pid: int) -> bool:
    """Any process with this PID (for the PIDs named in temporary files)."""
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] not in (b"Z", b"X")


def kill_and_reap(pid: int) -> None:
    """SIGKILL our child `pid` and reap it (a start that failed half way)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def signal_container(c, sig: int) -> None:
    """Signal PID 1 through a pidfd, so a recycled PID is never hit."""
    signal_process(c.pid, c.pid_start, sig)


def signal_process(pid: int | None, start: int | None, sig: int) -> None:
    """Signal the process with this PID and start time, through a pidfd (the start time
    is checked once the pidfd pins the process, so a recycled PID is never hit)."""
    if not pid:
        return
    try:
        fd = k.kernel.pidfd_open(pid)
    except MinirunError:
        return
    try:
        if proc_start_time(pid) == start:
            signal.pidfd_send_signal(fd, sig)
    except ProcessLookupError:
        pass
    finally:
        os.close(fd)


def wait_gone(c, timeout: float) -> bool:
    import select
    try:
        fd = k.kernel.pidfd_open(c.pid)
    except MinirunError:
        return True
    try:
        if not process_alive(c.pid, c.pid_start):
            return True
        r, _, _ = select.select([fd], [], [], timeout)
        return bool(r)
    finally:
        os.close(fd)


def run_tool(exe: str, argv: list[str], input: str | None = None) -> tuple[int, str, str]:
    """Run a tool to completion: (exit code, stdout, stderr). posix_spawn with memfds for
    its stdin, stdout and stderr, not subprocess: importing subprocess is ~5 ms of every
    start that runs one (iptables-restore on hosts whose iptables filter table exists),
    and files instead of pipes cannot deadlock whatever sizes go in and out."""
    fds = [os.memfd_create(name, os.MFD_CLOEXEC) for name in ("stdin", "stdout", "stderr")]
    try:
        if input is not None:
            os.write(fds[0], input.encode())
            os.lseek(fds[0], 0, os.SEEK_SET)
        else:
            os.close(fds[0])
            fds[0] = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        spawn = os.posix_spawn if "/" in exe else os.posix_spawnp
        pid = spawn(exe, [exe, *argv[1:]], os.environ,
                    file_actions=[(os.POSIX_SPAWN_DUP2, fd, i) for i, fd in enumerate(fds)])
        _, status = os.waitpid(pid, 0)

        def text(fd: int) -> str:
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            return b"".join(chunks).decode(errors="replace")
        return os.waitstatus_to_exitcode(status), text(fds[1]), text(fds[2])
    finally:
        for fd in fds:
            os.close(fd)
