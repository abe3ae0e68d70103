"""Names that resolve on user-created networks: one aardvark-dns per state root.

aardvark-dns (podman's DNS server, Debian's `aardvark-dns`) answers A records for the
containers of each network on that network's gateway address, port 53, and forwards
every other name to the resolvers of the host's /etc/resolv.conf (or to a container's
own `--dns` servers). A container asking is answered only with names of the networks it
is on (aardvark tells them apart by the asker's address), so names do not resolve across
networks. Its configuration is a directory with one file per network:

    GATEWAY                                  first line: the address to listen on
    CID IPV4 IPV6 NAME,ALIAS,... [DNS,...]   one line per container

and SIGHUP makes it re-read the directory (it re-binds its sockets).

The process is an owned object of the state root: `aardvark.json` in the runroot
records the config directory before the start, then the PID and its start time.
`aardvark-dns run` forks; the server writes its PID into the config directory and the
starter exits. A process is ours only if its PID and start time match the record, or,
before those are recorded (a crash right after the start), if its command line names
our private config directory. It is started by the first container of a named network
that needs it, reloaded when an entry changes, and stopped when the last entry goes.

Each container's entry is a journal step (`dns.entry`, layer `dns`, undone by
`unregister`); the line carries the container id, which proves it is the container's.
`prune` (system prune, network rm) drops entries of containers that have no record
and stops a server nobody needs.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

from .. import faults, fsutil, journal, oplog
from ..errors import MinirunError
from ..failures import Failure, attempt

PORT = 53
PID_FILE = "aardvark.pid"
CANDIDATES = ("aardvark-dns", "/usr/lib/podman/aardvark-dns", "/usr/libexec/podman/aardvark-dns")


def binary() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class Server:
    """The state root's aardvark-dns: its config directory, record and lock."""

    def __init__(self, paths):
        self.paths = paths
        self.dir = Path(paths.runroot) / "aardvark-dns"
        self.record = Path(paths.runroot) / "aardvark.json"
        self.lock = Path(paths.runroot) / "aardvark.lock"

    # -- the config files -----------------------------------------------------
    def _file(self, network: str) -> Path:
        return self.dir / network

    def _read(self, network: str) -> tuple[str | None, list[str]]:
        text = fsutil.read_text(self._file(network)) or ""
        lines = [l for l in text.split("\n") if l]
        return (lines[0] if lines else None), lines[1:]

    def _write(self, network: str, first: str, entries: list[str]) -> None:
        """Replace the network's file at once: aardvark reads every file of the directory,
        so the temporary file is made beside it, not in it."""
        path = self._file(network)
        if not entries:
            if path.exists():
                oplog.record(f"rm {path}", why="the network's last name went")
                if not oplog.skip():
                    path.unlink(missing_ok=True)
            return
        text = "\n".join([first, *entries]) + "\n"
        oplog.record(f"cat > {path} <<'EOF'\n{text}EOF",
                     why="aardvark-dns: the network's listening address, then one line per "
                         "container (id, address, names)")
        if oplog.skip():
            return
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.dir.parent / f".aardvark-{network}.{os.getpid()}.tmp"
        tmp.write_text(text)
        os.replace(tmp, path)

    def networks(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.dir) if n != PID_FILE)
        except FileNotFoundError:
            return []

    def entries(self, network: str) -> list[str]:
        return self._read(network)[1]

    # -- the process -------------------------------------------------------------
    def running(self) -> SimpleNamespace | None:
        """The server's PID and start time, if a process that is provably ours runs."""
        from ..procs import proc_start_time, process_alive
        rec = fsutil.read_json(self.record) or {}
        if rec.get("pid") and process_alive(rec["pid"], rec.get("start")):
            return SimpleNamespace(pid=rec["pid"], pid_start=rec["start"])
        if rec.get("pid") is None:  # started, killed before recording: look for it
            pid = (fsutil.read_text(self.dir / PID_FILE) or "").strip()
            if pid.isdigit() and self._names_our_dir(int(pid)):
                return SimpleNamespace(pid=int(pid), pid_start=proc_start_time(int(pid)))
        return None

    def _names_our_dir(self, pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            return False
        return (os.path.basename(argv[0]).startswith(b"aardvark-dns")
                and str(self.dir).encode() in argv)

    def _sockets(self, pid: int) -> dict[str, int]:
        """The UDP sockets the process has bound on port 53: {address: inode}."""
        inodes = set()
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:["):
                    inodes.add(int(link[8:-1]))
            with open(f"/proc/{pid}/net/udp") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            return {}
        out = {}
        for row in rows:
            cols = row.split()
            addr, port = cols[1].split(":")
            if int(port, 16) == PORT and int(cols[9]) in inodes:
                raw = bytes.fromhex(addr)[::-1]  # little-endian on x86 and arm
                out[".".join(str(b) for b in raw)] = int(cols[9])
        return out

    def _wait_serving(self, proc, before: dict[str, int], timeout: float = 10) -> None:
        """Until the server listens on every network's gateway with fresh sockets (after a
        start or a SIGHUP): a name is resolvable when `run` returns."""
        want = {self._read(n)[0] for n in self.networks()}
        deadline = time.monotonic() + timeout
        while True:
            now = self._sockets(proc.pid)
            if all(g in now and now[g] != before.get(g) for g in want):
                return
            if time.monotonic() > deadline:
                raise MinirunError(f"aardvark-dns (PID {proc.pid}) does not listen on "
                                   f"{', '.join(sorted(want))} port {PORT}")
            time.sleep(0.005)

    def _start(self) -> None:
        from ..procs import proc_start_time
        exe = binary()
        if exe is None:
            raise MinirunError("aardvark-dns is not installed (Debian: apt-get install "
                               "aardvark-dns): names on user-created networks need it")
        from .dns import SEARCH_DOMAIN
        argv = [exe, "--config", str(self.dir), "-p", str(PORT),
                "--filter-search-domain", "." + SEARCH_DOMAIN, "run"]
        oplog.record(" ".join(argv), why="the DNS server of the state root's named networks "
                     "(it forks into the background and writes its PID to aardvark.pid)")
        if oplog.skip():
            return
        (self.dir / PID_FILE).unlink(missing_ok=True)
        fsutil.write_json(self.record, {"config": str(self.dir), "pid": None})  # intent
        faults.point("aardvark.start")
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
        faults.point("aardvark.started")
        pid = (fsutil.read_text(self.dir / PID_FILE) or "").strip()
        if res.returncode != 0 or not pid.isdigit():
            err = [l for l in res.stderr.splitlines() if "syslog" not in l]
            raise MinirunError("aardvark-dns did not start"
                               + (f": {err[-1]}" if err else ""))
        proc = SimpleNamespace(pid=int(pid), pid_start=proc_start_time(int(pid)))
        fsutil.write_json(self.record, {"config": str(self.dir), "pid": proc.pid,
                                        "start": proc.pid_start})
        self._wait_serving(proc, {})

    def _reload(self, proc) -> None:
        from ..procs import signal_container
        before = self._sockets(proc.pid)
        oplog.record(f"kill -HUP {proc.pid}  # aardvark-dns",
                     why="aardvark-dns re-reads its config directory")
        if oplog.skip():
            return
        signal_container(proc, signal.SIGHUP)
        self._wait_serving(proc, before)

    def _stop(self, proc) -> list[Failure]:
        from ..procs import signal_container, wait_gone
        failures = []
        if proc is not None:
            # SIGKILL: it keeps nothing worth a goodbye, and a monitor's start (which
            # ignores SIGTERM) would have handed that disposition down to it
            oplog.record(f"kill -KILL {proc.pid}  # aardvark-dns",
                         why="no container needs aardvark-dns any more")
            if not oplog.skip():
                signal_container(proc, signal.SIGKILL)
                if not wait_gone(proc, 5):
                    failures.append(Failure("kill", f"aardvark-dns PID {proc.pid}",
                                            "still running"))
        if not failures and not oplog.skip():
            shutil.rmtree(self.dir, ignore_errors=True)
            self.record.unlink(missing_ok=True)
        return failures

    def sync(self) -> list[Failure]:
        """Make the process match the directory (under the lock): started, reloaded or
        stopped. Not in a plan (--explain=only): the files it would read were not written."""
        if oplog.skip():
            return []
        proc = self.running()
        if not self.networks():
            return self._stop(proc)
        if proc is None:
            self._start()
        else:
            self._reload(proc)
        return []

    # -- entries -------------------------------------------------------------------
    def set_entry(self, network: str, gateway: str, cid: str, line: str | None) -> None:
        """Put (or, with None, remove) container `cid`'s line in the network's file."""
        first, entries = self._read(network)
        entries = [e for e in entries if e.split(" ", 1)[0] != cid]
        if line is not None:
            entries.append(line)
        self._write(network, first or gateway, entries)


def entry_line(cid: str, ip: str, names: list[str], servers: tuple[str, ...] = ()) -> str:
    seen = []
    for n in names:
        if n and n not in seen:
            seen.append(n)
    line = f"{cid} {ip}  {','.join(seen)}"
    return line + (f" {','.join(servers)}" if servers else "")


def names_of(c, aliases: tuple[str, ...]) -> list[str]:
    """What the container answers to on a network: its name, its short id, its aliases."""
    return [c.name, c.id[:12], *aliases]


def register(paths, c, network: str, gateway: str, ip: str, aliases: tuple[str, ...],
             key: str = "dns.entry") -> None:
    """Journaled: the container's names on `network`, served from now on."""
    srv = Server(paths)
    line = entry_line(c.id, ip, names_of(c, aliases), c.config.dns)
    faults.check("attach.dns")
    with fsutil.locked(srv.lock):
        with journal.step(c, key, network=network, gateway=gateway):
            srv.set_entry(network, gateway, c.id, line)
            srv.sync()


def unregister(paths, c, network: str, gateway: str) -> list[Failure]:
    srv = Server(paths)

    def run():
        with fsutil.locked(srv.lock):
            srv.set_entry(network, gateway, c.id, None)
            failures = srv.sync()
            if failures:
                raise MinirunError(str(failures[0]))
    return attempt("remove the DNS names of", c.name, run)


def undo(c, steps) -> list[Failure]:
    """Layer `dns` of teardown.py."""
    failures = []
    for s in steps:
        failures += unregister(c.paths, c, s.intent["network"], s.intent["gateway"])
    return failures


def prune(paths, live: set[str]) -> list[Failure]:
    """Entries of containers with no live record go; the server stops if nobody is left
    (system prune, network rm, after a crash)."""
    srv = Server(paths)
    if not srv.dir.exists() and not srv.record.exists():
        return []
    with fsutil.locked(srv.lock):
        for n in srv.networks():
            first, entries = srv._read(n)
            kept = [e for e in entries if e.split(" ", 1)[0] in live]
            if kept != entries:
                srv._write(n, first, kept)
        for tmp in srv.dir.parent.glob(".aardvark-*.tmp"):
            from ..procs import pid_alive
            if not pid_alive(int(tmp.name.rsplit(".", 2)[1])):
                tmp.unlink(missing_ok=True)
        try:
            return srv.sync()
        except MinirunError as e:
            return [Failure("start", "aardvark-dns", str(e))]


def forget_network(paths, network: str) -> list[Failure]:
    """`network rm` (no container is attached): whatever names a crash left for the
    network go, and the server stops if no other network needs it."""
    srv = Server(paths)
    if not srv.dir.exists() and not srv.record.exists():
        return []
    with fsutil.locked(srv.lock):
        srv._write(network, "", [])
        try:
            return srv.sync()
        except MinirunError as e:
            return [Failure("reload", "aardvark-dns", str(e))]
