"""Detached containers (`run -d`): a monitor process starts the container and outlives the CLI.

The CLI forks the monitor, which starts the container (launch.py), reports
"ok" (or the error) up a pipe, and then execs the tiny C monitor (monitor.c,
well under 1 MB): it waits for PID 1 and execs `minirun _cleanup ID STATUS`
when it exits, which runs the one teardown. The CLI returns as soon as the
container runs. Without a C compiler the monitor stays a Python process.

The monitor closes every descriptor it inherited from the CLI's caller at
once (a caller's flock, a pipe someone waits on), keeping only the report pipe.
"""
from __future__ import annotations

import os
import signal
import sys

from .errors import MinirunError
from .launch import FORWARDED_SIGNALS, start
from .procs import kill_and_reap
from .lifecycle import explain_teardown, finish, report
from .record import Container
from .state import proc_start_time, save
from .sync import reported_error


def run_detached(c: Container, driver, firewall: str, out, keep_record: bool = False) -> int:
    """Start `c` under a monitor of its own. `keep_record` (start of an exited
    container): a failed start leaves it exited instead of removing it."""
    from . import monitor, oplog
    if oplog.dry_run:  # --explain=only: the plan ends before any process would start
        start(c, driver)
    if oplog.listening():  # --explain: also into explain.log, the container's whole life
        oplog.log_to(c.explain_path, oplog.comment(
            f"{_now()} minirun run: container {c.name} ({c.id[:12]}) starts"), backlog=True)
    monitor_bin = monitor.binary()  # before forking: compile errors belong to the CLI
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    mpid = os.fork()
    if mpid == 0:
        os.close(r)
        _monitor_main(c, driver, w, monitor_bin, firewall, keep_record)  # never returns
    os.close(w)
    with os.fdopen(r, "rb") as f:
        reply = f.read().decode()
    if reply.startswith("ok"):
        print(c.id, file=out)
        return 0
    os.waitpid(mpid, 0)
    err = reported_error(reply)
    if err is None:
        # The monitor died without a word (SIGKILL): we report a failure, so nothing of
        # the container may stay, even if it got as far as running.
        from .state import reload
        now = reload(c)
        if now is not None:
            report(finish(now, None, remove=not keep_record, force=True))
        err = MinirunError("the container's monitor died during start-up")
    raise err


def _close_inherited(keep: int) -> None:
    """Close every fd >= 3 but `keep`: nothing of our caller's stays open for the
    container's whole life."""
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 20)


def _write_quiet(fd: int, msg: str) -> None:
    try:
        os.write(fd, msg.encode())
    except OSError:
        pass


def _monitor_main(c: Container, driver, report_fd: int, monitor_bin: str | None,
                  firewall: str, keep_record: bool = False) -> None:
    code = 125
    pid = None
    try:
        _close_inherited(report_fd)
        os.setsid()
        # stdin/stdout go now; stderr stays until the start is done, so errors and
        # --explain output reach the user's terminal.
        devnull = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1):
            os.dup2(devnull, fd)
        for s in FORWARDED_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        me = os.getpid()
        c.owner_pid, c.owner_start = me, proc_start_time(me)
        save(c)
        # PID 1 writes into two pipes; the monitor logs what comes out of them, each
        # line with its stream and time (logfile.py describes the format). With -t
        # (run -dit) PID 1 has a terminal instead, held by this process for attach.
        log = os.open(c.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        null_in = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        master = out_r = err_r = None
        if c.config.tty:
            try:
                pid, master = start(c, driver, stdin_fd=null_in, output_fd=log)
            finally:
                os.close(null_in)
        else:
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            try:
                pid, _ = start(c, driver, stdin_fd=null_in, output_fd=out_w, error_fd=err_w)
            finally:
                for fd in (out_w, err_w, null_in):
                    os.close(fd)
        try:
            sys.stderr.flush()
        except OSError:
            pass
        os.dup2(devnull, 2)
        os.close(devnull)
        # The CLI may be gone (killed while we started): the container runs on, and
        # this monitor still owns it.
        _write_quiet(report_fd, "ok\n")
        os.close(report_fd)
        cleanup = [sys.executable, "-m", "minirun", "--root", str(c.paths.root),
                   "--runroot", str(c.paths.runroot), "--firewall", firewall,
                   "_cleanup", c.id, "{status}"]
        if master is not None:
            # run -dit: this process holds the pty for `minirun attach` (attach.py)
            from .attach import serve
            from .init import exit_code
            status = serve(c, pid, master, log)
            os.close(master)
            os.close(log)
            explain_teardown(c, exit_code(status))
            report(finish(c, exit_code(status)))
            if c.config.restart_policy != "no":
                from .restart import after_exit
                after_exit(c.paths, c.id, firewall)
            os._exit(0)
        if monitor_bin:
            for fd in (log, out_r, err_r):
                os.set_inheritable(fd, True)
            os.execv(monitor_bin, ["minirun-monitor", "--log", str(log), str(out_r),
                                   str(err_r), str(pid)] + cleanup)
        # No C compiler: stay as a (larger) Python monitor.
        from .init import exit_code
        from .logfile import relay
        status = relay(pid, {"stdout": out_r, "stderr": err_r}, log)
        os.close(log)
        explain_teardown(c, exit_code(status))
        report(finish(c, exit_code(status)))
        if c.config.restart_policy != "no":  # as the C monitor's _cleanup does
            from .restart import after_exit
            after_exit(c.paths, c.id, firewall)
        code = 0
    except BaseException as e:
        if pid is not None:  # never leave a container running without its records
            kill_and_reap(pid)
        try:
            report(finish(c, None, remove=not keep_record, force=True))
        except Exception as e2:  # noqa: BLE001
            print(f"minirun: teardown: {e2}", file=sys.stderr)
        if isinstance(e, MinirunError):
            _write_quiet(report_fd, f"error {e.exit_code} {e}")
        else:
            _write_quiet(report_fd, f"error 125 monitor failed: {e!r}")
    os._exit(code)


def _now() -> str:
    import time
    return time.strftime("%Y-%m-%d %H:%M:%S %z")

