"""The parent side: create a container, attach its network, wait for it, tear it down.

The process model (see init.py for the child's half of the protocol):

    minirun run ──fork──► PID 1 of a new PID namespace (init.child_main)
        │                    unshare mnt/uts/ipc/net ── "ns" ──►
        │  attach network from the host side, using /proc/PID/ns/net
        │  ◄── "go" ──       mounts, pivot_root, caps, exec
        │  EOF on the socket = exec succeeded; "error CODE MSG" = it did not
        └─ foreground: wait, forward signals, tear down, exit with its code

Detached (-d): the CLI forks a monitor process that does all of the above and
then execs the tiny C monitor (monitor.c, well under 1 MB), which waits for the
container and execs `minirun _cleanup` when it exits. The CLI returns as soon
as the container runs.

The PID namespace is unshared by the parent just around the fork (and
restored with setns right after), so no intermediate process is needed: the
forked child is PID 1 and our direct child.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

from . import faults, fsutil
from . import kernel as k
from .errors import Conflict, MinirunError, TeardownError, UsageError
from .init import ChildPlan, _Channel, child_main, exit_code, reported_error
from .network import dns
from .network.plugin import driver_of, get_driver
from .rootfs import plan as mount_plan
from .spec import ContainerSpec
from .state import (Container, Paths, all_containers, create_record, delete_record, lookup,
                    process_alive, proc_start_time)

NS_FLAGS = k.CLONE_NEWNS | k.CLONE_NEWUTS | k.CLONE_NEWIPC
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                     signal.SIGUSR1, signal.SIGUSR2)


class _Aborted(MinirunError):
    """A signal arrived while the container was being set up."""


class Runtime:
    def __init__(self, paths: Paths, firewall: str = "nftables"):
        self.paths = paths
        self.firewall = firewall

    # ------------------------------------------------------------------ run
    def run(self, spec: ContainerSpec, ports: list, out=sys.stdout) -> int:
        driver = get_driver(self.paths, spec.network, self.firewall)
        if ports:
            if driver.name != "bridge":
                raise UsageError(f"publishing ports needs a bridge network, not "
                                 f"--network {spec.network}")
            driver.check_ports(ports)
        self._check_paths(spec.rootfs, str(self.paths.root))
        c = create_record(self.paths, spec.name, self._config(spec, ports))
        try:
            hostname = spec.hostname or c.id[:12]
            c.update(hostname=hostname, env=spec.container_env(hostname),
                     owner_pid=os.getpid(), owner_start=proc_start_time(os.getpid()))
            for d in ("upper", "work", "merged"):
                (c.dir / d).mkdir(mode=0o755)
            driver.prepare(c)
            self._write_etc(c, driver)
        except BaseException:
            self._teardown_quietly(c, remove=True)
            raise
        if spec.detach:
            return self._run_detached(c, spec, driver, out)
        return self._run_foreground(c, spec, driver)

    @staticmethod
    def _check_paths(*paths: str) -> None:
        # overlayfs takes its layers in a comma- and colon-separated option string.
        for path in paths:
            if any(ch in path for ch in ",:\\"):
                raise UsageError(f"path {path!r} must not contain ',', ':' or '\\' "
                                 "(overlayfs cannot take it)")

    @staticmethod
    def _config(spec: ContainerSpec, ports: list) -> dict:
        return {
            "rootfs": spec.rootfs, "command": list(spec.command), "workdir": spec.workdir,
            "user": list(spec.user) if spec.user else None, "caps": list(spec.caps),
            "read_only": spec.read_only, "init": spec.init, "tty": spec.tty,
            "interactive": spec.interactive, "remove": spec.remove, "detach": spec.detach,
            "network_mode": spec.network, "requested_ip": spec.ip,
            "port_specs": [{"host_ip": p.host_ip, "host_port": p.host_port,
                            "container_port": p.container_port, "proto": p.proto}
                           for p in ports],
            "volumes": [{"source": v.source, "target": v.target, "readonly": v.readonly}
                        for v in spec.volumes],
        }

    def _write_etc(self, c: Container, driver) -> None:
        etc = c.dir / "etc"
        etc.mkdir(mode=0o755)
        hostname = c.data["hostname"]
        (etc / "hostname").write_text(hostname + "\n")
        (etc / "hosts").write_text(dns.render_hosts(hostname, driver.hosts_entries(c)))
        try:
            host_resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            host_resolv = ""
        (etc / "resolv.conf").write_text(dns.render_resolv(host_resolv, driver.name == "host"))
        for f in etc.iterdir():
            f.chmod(0o644)

    def _child_plan(self, c: Container, driver, stdin_fd, output_fd) -> ChildPlan:
        from .spec import Volume
        d = c.data
        etc = {f"/etc/{n}": str(c.dir / "etc" / n) for n in ("hostname", "hosts", "resolv.conf")}
        volumes = [Volume(**v) for v in d["volumes"]]
        flags = NS_FLAGS | (k.CLONE_NEWNET if driver.new_netns else 0)
        return ChildPlan(
            lower=d["rootfs"], upper=str(c.dir / "upper"), work=str(c.dir / "work"),
            merged=str(c.dir / "merged"), unshare_flags=flags, hostname=d["hostname"],
            steps=mount_plan(volumes=volumes, etc_files=etc), argv=d["command"],
            env=d["env"], workdir=d["workdir"], user=tuple(d["user"]) if d["user"] else None,
            caps=d["caps"], read_only=d["read_only"], tty=d["tty"], init=d["init"],
            stdin_fd=stdin_fd, output_fd=output_fd)

    def _start(self, c: Container, driver, stdin_fd=None, output_fd=None, on_fork=None):
        """Fork PID 1, attach the network, let it exec. Returns (pid, pty master or None)."""
        plan = self._child_plan(c, driver, stdin_fd, output_fd)
        plan = plan._replace(join_netns_fd=driver.join_fd(c))
        ours, theirs = socket.socketpair()
        own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        k.kernel.unshare(k.CLONE_NEWPID)
        try:
            pid = os.fork()
        except BaseException:
            k.kernel.setns(own_pidns, k.CLONE_NEWPID, "pid namespace")
            raise
        if pid == 0:
            ours.close()
            for s in FORWARDED_SIGNALS:
                signal.signal(s, signal.SIG_DFL)
            child_main(theirs, plan)
        if on_fork:
            on_fork(pid)
        k.kernel.setns(own_pidns, k.CLONE_NEWPID, "pid namespace")
        os.close(own_pidns)
        theirs.close()
        if plan.join_netns_fd is not None:
            os.close(plan.join_netns_fd)
        c.update(pid=pid, pid_start=proc_start_time(pid))
        chan = _Channel(ours)
        try:
            self._expect(chan, "ns", pid)
            try:
                driver.attach(c, pid)
                faults.check("start.go")
                chan.send("go")
            except (MinirunError, OSError):
                # If the child failed meanwhile (a bad mount), its reason is the real one.
                self._raise_child_error(chan, pid)
                raise
            master = None
            if plan.tty:
                msg, fds, _f, _a = socket.recv_fds(ours, 4096, 1)
                if not fds:  # an error line instead of the pty
                    _check(msg.decode().strip() or None, "pty", pid)
                master = fds[0]
            self._expect(chan, None, pid)  # EOF: the command was exec'd
        except BaseException:
            _kill_and_reap(pid)
            raise
        finally:
            ours.close()
        c.update(status="running", started=time.time())
        return pid, master

    @staticmethod
    def _raise_child_error(chan: _Channel, pid: int) -> None:
        import select
        # A child that failed has written its reason before exiting, and its exit is
        # what made our side fail: the line is already there, no need to wait for it.
        r, _, _ = select.select([chan.sock], [], [], 0.02)
        if r:
            try:
                line = chan.recv()
            except OSError:
                return
            if reported_error(line):
                _check(line, None, pid)

    @staticmethod
    def _expect(chan: _Channel, want: str | None, pid: int) -> None:
        _check(chan.recv(), want, pid)

    def _run_foreground(self, c: Container, spec: ContainerSpec, driver) -> int:
        # Until PID 1 exists a signal aborts the start (and its teardown runs); from
        # then on it is forwarded, even if the exec has not been confirmed yet.
        target: list[int] = []

        def on_signal(signum, _frame):
            if not target:
                raise _Aborted(f"interrupted by signal {signum} during start-up")
            try:
                os.kill(target[0], signum)
            except ProcessLookupError:
                pass

        old = {s: signal.signal(s, on_signal) for s in FORWARDED_SIGNALS}
        stdin_fd = None
        if not spec.interactive and not spec.tty:
            stdin_fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        try:
            pid, master = self._start(c, driver, stdin_fd=stdin_fd, on_fork=target.append)
        except BaseException:
            self._teardown_quietly(c, remove=True)
            raise
        finally:
            if stdin_fd is not None:
                os.close(stdin_fd)
        if master is not None:
            from .tty import relay
            pidfd = k.kernel.pidfd_open(pid)
            relay(master, pidfd)
            os.close(pidfd)
            os.close(master)
        _, status = os.waitpid(pid, 0)
        code = exit_code(status)
        for s, h in old.items():
            signal.signal(s, h)
        failures = self.finish(c, code)
        if failures:
            for f in failures:
                print(f"minirun: teardown: {f}", file=sys.stderr)
        return code

    def _run_detached(self, c: Container, spec: ContainerSpec, driver, out) -> int:
        from . import monitor
        monitor_bin = monitor.binary()  # before forking: compile errors belong to the CLI
        r, w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        mpid = os.fork()
        if mpid == 0:
            os.close(r)
            self._monitor_main(c, driver, w, monitor_bin)  # never returns
        os.close(w)
        with os.fdopen(r, "rb") as f:
            reply = f.read().decode()
        if reply.startswith("ok"):
            print(c.id, file=out)
            return 0
        os.waitpid(mpid, 0)
        raise reported_error(reply) or MinirunError("the container's monitor died during start-up")

    def _monitor_main(self, c: Container, driver, report_fd: int, monitor_bin: str | None):
        code = 125
        pid = None
        try:
            os.setsid()
            # stdin/stdout go now; stderr stays until the start is done, so errors and
            # --explain output reach the user's terminal.
            devnull = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1):
                os.dup2(devnull, fd)
            for s in FORWARDED_SIGNALS:
                signal.signal(s, signal.SIG_IGN)
            c.update(owner_pid=os.getpid(), owner_start=proc_start_time(os.getpid()))
            log = os.open(c.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                          0o640)
            null_in = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
            try:
                pid, _ = self._start(c, driver, stdin_fd=null_in, output_fd=log)
            finally:
                os.close(log)
                os.close(null_in)
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
            cleanup = [sys.executable, "-m", "minirun", "--root", str(self.paths.root),
                       "--runroot", str(self.paths.runroot), "--firewall", self.firewall,
                       "_cleanup", c.id, "{status}"]
            if monitor_bin:
                os.execv(monitor_bin, ["minirun-monitor", str(pid)] + cleanup)
            # No C compiler: stay as a (larger) Python monitor.
            _, status = os.waitpid(pid, 0)
            self.finish(c, exit_code(status))
            code = 0
        except BaseException as e:
            if pid is not None:  # never leave a container running without its records
                _kill_and_reap(pid)
            self._teardown_quietly(c, remove=True)
            if isinstance(e, MinirunError):
                _write_quiet(report_fd, f"error {e.exit_code} {e}")
            else:
                _write_quiet(report_fd, f"error 125 monitor failed: {e!r}")
        os._exit(code)

    # ------------------------------------------------------------ teardown
    def _lock(self, c: Container):
        return fsutil.locked(self.paths.runroot / "containers" / f"{c.id}.lock")

    def finish(self, c: Container, code: int | None, remove: bool | None = None) -> list[str]:
        """The container has exited (or never started): record its code, undo everything,
        remove the record if asked (`remove`, else its --rm). Returns the failures."""
        with self._lock(c):
            if not c.record_path.exists():
                return []
            c.reload()
            if c.data.get("status") == "exited":
                return []
            c.data.update(status="exited", exit_code=code, finished=time.time())
            failures = self._detach(c)
            if (c.data.get("remove") if remove is None else remove) and not failures:
                delete_record(c)
            else:
                c.save()
            return failures

    def _detach(self, c: Container) -> list[str]:
        if c.data.get("torn_down"):
            return []
        failures = []
        if c.data.get("network"):
            failures = driver_of(self.paths, c, self.firewall).detach(c)
        if not failures:
            c.data["torn_down"] = True
        return failures

    def _teardown_quietly(self, c: Container, remove: bool) -> None:
        """Undo a failed start; the failure being reported is the start's, not this one's."""
        try:
            failures = self.finish(c, None, remove=remove)
        except Exception as e:  # noqa: BLE001
            failures = [str(e)]
        for f in failures:
            print(f"minirun: teardown: {f}", file=sys.stderr)

    def owner_alive(self, c: Container) -> bool:
        return process_alive(c.data.get("owner_pid"), c.data.get("owner_start"))

    def reclaim(self) -> list[str]:
        """Tear down every container whose process and owner are gone (crash, SIGKILL,
        reboot), and roll back every start whose owner died before it completed (its
        process may have exec'd, but `minirun run` never reported success).
        Returns the names reclaimed."""
        done = []
        for c in all_containers(self.paths):
            if self.owner_alive(c):
                continue
            if c.data.get("status") == "creating":
                if c.is_running():
                    _signal(c, signal.SIGKILL)
                    _wait_gone(c, 10)
                self._teardown_quietly(c, remove=True)
                done.append(c.name)
            elif c.status() == "dead":
                for f in self.finish(c, c.data.get("exit_code")):
                    print(f"minirun: reclaim {c.name}: {f}", file=sys.stderr)
                done.append(c.name)
        return done

    def prune_orphans(self) -> list[str]:
        """Sweep network objects that no record accounts for (see network/reclaim.py)."""
        from .network.reclaim import reclaim_orphans
        live = {c.id for c in all_containers(self.paths)
                if c.status() in ("running", "creating") or self.owner_alive(c)}
        return reclaim_orphans(self.paths, live, lambda cid: cid in live)

    # ----------------------------------------------------------- lifecycle
    def kill(self, ref: str, sig: int = signal.SIGKILL) -> Container:
        c = lookup(self.paths, ref)
        if not c.is_running():
            raise Conflict(f"container {c.name} is not running")
        _signal(c, sig)
        return c

    def stop(self, ref: str, timeout: float = 10) -> Container:
        c = lookup(self.paths, ref)
        if c.is_running():
            _signal(c, signal.SIGTERM)
            if not _wait_gone(c, timeout):
                _signal(c, signal.SIGKILL)
                _wait_gone(c, 10)
        self._wait_teardown(c)
        return c

    def _wait_teardown(self, c: Container, timeout: float = 15) -> None:
        """The owner (run or monitor) tears down after the exit; wait for it, or do it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not c.record_path.exists() or c.reload().data.get("status") == "exited":
                return
            if not self.owner_alive(c):
                break
            time.sleep(0.01)
        if c.record_path.exists():
            failures = self.finish(c, c.data.get("exit_code"))
            if failures:
                raise TeardownError(failures)

    def remove(self, ref: str, force: bool = False) -> Container:
        c = lookup(self.paths, ref)
        if c.is_running():
            if not force:
                raise Conflict(f"container {c.name} is running: stop it first or use rm -f")
            _signal(c, signal.SIGKILL)
            _wait_gone(c, 10)
        elif c.data.get("status") != "exited":
            self._wait_teardown(c)
        # Whoever takes the lock first tears down (us, or the owner); the other finds
        # nothing left to do.
        with self._lock(c):
            if c.record_path.exists():
                c.reload()
                failures = self._detach(c)
                if failures:
                    c.save()
                    raise TeardownError(failures)
                delete_record(c)
        return c


def _check(line: str | None, want: str | None, pid: int) -> None:
    """Accept the child's message `want` (None: EOF, the exec happened), or raise."""
    if line == want:
        return
    if line is None:
        raise MinirunError("container init exited before it was ready")
    err = reported_error(line)
    _kill_and_reap(pid)
    raise err or MinirunError(f"unexpected message from container init: {line!r}")


def _write_quiet(fd: int, msg: str) -> None:
    try:
        os.write(fd, msg.encode())
    except OSError:
        pass


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _signal(c: Container, sig: int) -> None:
    """Signal PID 1 through a pidfd, so a recycled PID is never hit."""
    try:
        fd = k.kernel.pidfd_open(c.pid)
    except MinirunError:
        return
    try:
        if proc_start_time(c.pid) == c.data.get("pid_start"):
            signal.pidfd_send_signal(fd, sig)
    except ProcessLookupError:
        pass
    finally:
        os.close(fd)


def _wait_gone(c: Container, timeout: float) -> bool:
    import select
    try:
        fd = k.kernel.pidfd_open(c.pid)
    except MinirunError:
        return True
    try:
        if not process_alive(c.pid, c.data.get("pid_start")):
            return True
        r, _, _ = select.select([fd], [], [], timeout)
        return bool(r)
    finally:
        os.close(fd)
