"""A container's log: Docker's json-file format, read by `minirun logs`.

Each line is one record, {"log": "text\\n", "stream": "stdout"|"stderr", "time":
RFC 3339 with nanoseconds}, as Docker's json-file driver writes them. Why this
format rather than two plain files: every line keeps its own time (for -t,
--since and --until) and its stream, in the order they were written, in one
file that one O_APPEND write per record keeps whole; and a learner's `jq` or
Docker knowledge applies to it. A line longer than 16 KiB is cut into several
records (the last one ends with the newline), as Docker cuts them.

The writer is the C monitor (monitor.c, started by monitor.py): the monitor of a detached container,
and a tee process for a foreground one (not --rm: its log would go with it; not
-t: a terminal's output is not logged). `relay()` here stands in for the C monitor
of a detached container where no C compiler was found (foreground containers are
then not logged). Lines that are not JSON (logs written by a
minirun before this format) are read as standard output without a time.
"""
from __future__ import annotations

import json
import os
import re
import select
import time
from .tuples import NamedTuple

from .errors import UsageError

CHUNK = 16384


# -- writing (the Python monitor's relay) ----------------------------------------

def _stamp() -> str:
    t = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 10**9)) + f".{t % 10**9:09d}Z"


def record(data: bytes, stream: str) -> bytes:
    text = data.decode("utf-8", "surrogateescape")
    return (json.dumps({"log": text, "stream": stream, "time": _stamp()}, ensure_ascii=False)
            .encode("utf-8", "surrogateescape") + b"\n")


def relay(pid: int, fds: dict[str, int], log_fd: int) -> int:
    """Log the pipes in `fds` ({"stdout": fd, "stderr": fd}) until PID 1 exits; then what
    they still hold. Returns the raw wait status."""
    bufs = {fd: b"" for fd in fds.values()}
    names = {fd: name for name, fd in fds.items()}
    status = None

    def emit(fd, data):
        os.write(log_fd, record(data, names[fd]))

    def feed(fd) -> bool:
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return False
        if not data:
            if bufs[fd]:
                emit(fd, bufs[fd])
            bufs.pop(fd)
            os.close(fd)
            return False
        buf = bufs[fd] + data
        while b"\n" in buf:
            line, _, buf = buf.partition(b"\n")
            emit(fd, line + b"\n")
        while len(buf) >= CHUNK:
            emit(fd, buf[:CHUNK])
            buf = buf[CHUNK:]
        bufs[fd] = buf
        return True

    while bufs and status is None:
        ready, _, _ = select.select(list(bufs), [], [], 0.5)
        for fd in ready:
            feed(fd)
        got, st = os.waitpid(pid, os.WNOHANG)
        if got == pid:
            status = st
    for fd in list(bufs):
        os.set_blocking(fd, False)
        while fd in bufs and feed(fd):
            pass
        if fd in bufs:
            if bufs[fd]:
                emit(fd, bufs[fd])
            os.close(fd)
    if status is None:
        status = os.waitpid(pid, 0)[1]
    return status


# -- reading -------------------------------------------------------------------

class Entry(NamedTuple):
    stream: str
    text: bytes
    time: str        # as written ("" for a line of an older, plain log)
    t: float | None  # seconds since the epoch


_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:[Tt ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?"
                      r"(Z|z|[+-]\d\d:?\d\d)?)?$")
_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_time(value: str, now: float) -> float:
    """--since/--until as Docker takes them: RFC 3339 (or a date), a Unix time with an
    optional fraction, or a Go duration before now (10m, 1h30m, 90s)."""
    import calendar
    v = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", v) and len(v.split(".")[0]) != 8:
        return float(v)
    if re.fullmatch(r"(?:\d+(?:\.\d*)?(?:ns|us|µs|ms|s|m|h))+", v):
        return now - sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(v))
    m = _RFC3339.match(v)
    if m:
        y, mo, d, hh, mm, ss, frac, zone = m.groups()
        fields = (int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0))
        try:
            if zone is None:  # no zone: local time, as Docker reads it
                base = time.mktime(fields + (0, 0, -1))
            else:
                base = calendar.timegm(fields + (0, 0, 0))
                if zone not in "Zz":
                    sign = -1 if zone[0] == "-" else 1
                    z = zone[1:].replace(":", "")
                    base -= sign * (int(z[:2]) * 3600 + int(z[2:]) * 60)
        except (ValueError, OverflowError):
            raise UsageError(f"invalid time {value!r}") from None
        return base + (float("0." + frac) if frac else 0.0)
    raise UsageError(f"invalid time {value!r}: expected RFC 3339 (2006-01-02T15:04:05Z), a "
                     "Unix time, or a duration such as 10m")


def _entry_time(s: str) -> float | None:
    m = _RFC3339.match(s)
    if not m:
        return None
    try:
        return parse_time(s, 0.0)
    except UsageError:
        return None


class ReadOptions(NamedTuple):
    tail: int | None = None        # None: all
    timestamps: bool = False
    since: float | None = None
    until: float | None = None

    @classmethod
    def parse(cls, tail: str | None, timestamps: bool, since: str | None,
              until: str | None, now: float | None = None) -> "ReadOptions":
        now = time.time() if now is None else now
        n = None
        if tail not in (None, "", "all"):
            try:
                n = int(tail)
            except ValueError:
                raise UsageError(f"invalid --tail {tail!r}: a number or all") from None
            n = None if n < 0 else n  # Docker: a negative count means all
        return cls(n, timestamps, parse_time(since, now) if since else None,
                   parse_time(until, now) if until else None)

    def wants(self, e: Entry) -> bool:
        if e.t is None:
            return self.since is None and self.until is None
        return ((self.since is None or e.t >= self.since)
                and (self.until is None or e.t <= self.until))


def parse_line(line: bytes) -> Entry:
    try:
        d = json.loads(line.decode("utf-8", "surrogateescape"))
        text = d["log"].encode("utf-8", "surrogateescape")
        stamp = str(d.get("time") or "")
        return Entry("stderr" if d.get("stream") == "stderr" else "stdout", text, stamp,
                     _entry_time(stamp))
    except (ValueError, KeyError, TypeError, AttributeError):
        return Entry("stdout", line + b"\n", "", None)


def still_written(c) -> bool:
    """Whether `c`'s log may still grow (`logs -f`, `start -a` follow it until not): it is
    whole once the container is recorded stopped, as PID 1 may be gone while its monitor
    (or the foreground run's tee) still writes what it left."""
    from .state import is_running, owner_alive, reload
    now = reload(c)
    return now is not None and now.state != "stopped" and (
        is_running(now) or owner_alive(now))


def paths_of(c) -> list:
    return [c.log_path]


def _entries(f, carry: bytes) -> tuple[list[Entry], bytes]:
    data = carry + f.read()
    lines = data.split(b"\n")
    rest = lines.pop()  # an incomplete record: read again later
    return [parse_line(line) for line in lines if line], rest


def _write(e: Entry, opts: ReadOptions, out) -> None:
    stream = out[e.stream]
    if opts.timestamps:
        stream.write((e.time or "-").encode() + b" ")
    stream.write(e.text)
    stream.flush()


def read(paths, opts: ReadOptions, out, follow: bool = False, alive=lambda: False,
         poll: float = 0.1, offset: int = 0) -> None:
    """Write the log's records (from byte `offset`) to out["stdout"] and out["stderr"];
    with `follow`, keep writing new ones while `alive()` says the container runs."""
    try:
        f = open(paths[0], "rb")
    except FileNotFoundError:
        return
    with f:
        f.seek(offset)
        entries, carry = _entries(f, b"")
        entries = [e for e in entries if opts.wants(e)]
        if opts.tail is not None:
            entries = entries[len(entries) - opts.tail:] if opts.tail else []
        for e in entries:
            _write(e, opts, out)
        while follow:
            running = alive()  # before reading: what it wrote before it exited is read
            more, carry = _entries(f, carry)
            for e in more:
                if opts.until is not None and e.t is not None and e.t > opts.until:
                    return
                if opts.wants(e):
                    _write(e, opts, out)
            if not running:
                return
            if opts.until is not None and time.time() > opts.until:
                return
            time.sleep(poll)
