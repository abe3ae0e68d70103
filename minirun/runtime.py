"""`minirun run`: validate, record, prepare, start (foreground or detached), finish.

The pieces, each in its own module:
    record.py, state.py     the typed record and where it lives
    journal.py              every side effect recorded as intent before it is made
    launch.py, sync.py      fork PID 1 and the parent/child protocol
    detached.py             the monitor of a detached container
    lifecycle.py            finish, kill, stop, rm, reclaim
    teardown.py             the one teardown every one of those paths calls
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from . import kernel as k
from .faults import phase
from .errors import Conflict, MinirunError, UsageError
from .launch import FORWARDED_SIGNALS, start
from .lifecycle import finish, report
from .network import dns
from .network.plugin import get_driver
from .record import Config, Container, Port
from .spec import ContainerSpec
from .state import Paths, create_record, find_by_name


class _Aborted(MinirunError):
    """A signal arrived while the container was being set up."""


def config_of(spec: ContainerSpec, ports: list, hostname: str) -> Config:
    return Config(
        rootfs=spec.rootfs, command=tuple(spec.command), hostname=hostname,
        env=spec.container_env(hostname), workdir=spec.workdir, user=spec.user,
        caps=tuple(spec.caps), read_only=spec.read_only, init=spec.init, tty=spec.tty,
        interactive=spec.interactive, remove=spec.remove, detach=spec.detach,
        network_mode=spec.network, requested_ip=spec.ip,
        ports=tuple(Port(p.host_ip, p.host_port, p.container_port, p.proto,
                         getattr(p, "host_range", None)) for p in ports),
        volumes=tuple(spec.volumes), resources=spec.resources, seccomp=spec.seccomp,
        seccomp_profile=spec.seccomp_profile, privileged=spec.privileged,
        image=spec.image, image_id=spec.image_id, lowers=tuple(spec.lowers),
        labels=dict(spec.labels), exposed_ports=tuple(spec.exposed_ports),
        tmpfs=tuple(spec.tmpfs), groups=tuple(spec.groups), stop_signal=spec.stop_signal,
        stop_timeout=spec.stop_timeout, cidfile=spec.cidfile,
        aliases=spec.aliases, dns=spec.dns, dns_search=spec.dns_search,
        dns_options=spec.dns_options, extra_hosts=spec.extra_hosts,
        restart_policy=spec.restart[0], restart_max=spec.restart[1])


def check_paths(*paths: str) -> None:
    # overlayfs takes its layers in a comma- and colon-separated option string.
    for path in paths:
        if any(ch in path for ch in ",:\\"):
            raise UsageError(f"path {path!r} must not contain ',', ':' or '\\' "
                             "(overlayfs cannot take it)")


def run(paths: Paths, spec: ContainerSpec, ports: list, firewall: str = "nftables",
        out=sys.stdout) -> int:
    if spec.name is not None and find_by_name(paths, spec.name) is not None:
        raise Conflict(f"container name {spec.name!r} is already in use")
    driver = get_driver(paths, spec.network, firewall)
    driver.preflight(spec, ports)  # refuses bad input before anything is created
    check_paths(spec.rootfs, str(paths.root), *spec.lowers)
    # The hostname defaults to the short id, which only exists once the record does.
    phase("preflight")
    c = create_record(paths, spec.name, config_of(spec, ports, spec.hostname or ""))
    phase("record created")
    try:
        if spec.cidfile or any(v.name for v in spec.volumes):
            from .runextras import after_record
            after_record(paths, c, spec)
        # the record now names the image's layers (rmi keeps them); were they removed
        # between the lookup and here, say so rather than fail the mount
        if any(not os.path.isdir(d) for d in spec.lowers):
            raise Conflict(f"image {spec.image!r} was removed while the container started")
        if not spec.hostname:
            hostname = c.id[:12]
            c.config = c.config._replace(hostname=hostname, env=spec.container_env(hostname))
        for d in ("upper", "work", "merged"):
            (c.dir / d).mkdir(mode=0o755)
        from .cgroups import create as create_cgroup
        create_cgroup(c)  # journal step cg.create: the cgroup and its limits
        phase("cgroup created")
        driver.prepare(c)
        phase("network prepared")
        write_etc(c, driver)
        phase("etc written")
    except BaseException:
        report(finish(c, None, remove=True, force=True))
        if spec.cidfile:
            from .runextras import drop_cidfile
            drop_cidfile(spec.cidfile, c.id)
        raise
    if spec.detach:
        from .detached import run_detached
        return run_detached(c, driver, firewall, out)
    return _run_foreground(c, spec, driver)


def write_etc(c: Container, driver) -> None:
    etc = c.dir / "etc"
    etc.mkdir(mode=0o755)
    hostname = c.config.hostname
    (etc / "hostname").write_text(hostname + "\n")
    cfg = c.config
    gateway = c.network.gateway if c.network else None
    (etc / "hosts").write_text(dns.render_hosts(hostname, driver.hosts_entries(c),
                                                dns.resolve_hosts(cfg.extra_hosts, gateway)))
    try:
        host_resolv = Path("/etc/resolv.conf").read_text()
    except OSError:
        host_resolv = ""
    # a named network: its aardvark-dns answers (and forwards to --dns, if given)
    server = getattr(driver, "dns_server", None)
    servers, comment, domain = cfg.dns, None, None
    if server:
        domain = dns.SEARCH_DOMAIN
        servers = (server,)
        comment = (f"names of network {c.network.network} resolve at {server} (aardvark-dns)"
                   + (f"; other names go to {', '.join(cfg.dns)}" if cfg.dns else ""))
    (etc / "resolv.conf").write_text(dns.render_resolv(
        host_resolv, driver.name == "host", servers, cfg.dns_search, cfg.dns_options,
        comment, domain))
    for f in etc.iterdir():
        f.chmod(0o644)


def _reap(pid: int) -> None:
    while True:
        try:
            os.waitpid(pid, 0)
            return
        except InterruptedError:
            continue
        except ChildProcessError:
            return


def _run_foreground(c: Container, spec: ContainerSpec, driver) -> int:
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
    tee = None
    try:
        if not spec.remove and not spec.tty:  # its output logged too (logfile.py)
            from .monitor import start_tee
            tee = start_tee(c)
        pid, master = start(c, driver, stdin_fd=stdin_fd, on_fork=target.append,
                            output_fd=tee and tee[1], error_fd=tee and tee[2])
    except BaseException:
        report(finish(c, None, remove=True, force=True))
        if tee:
            os.close(tee[1])
            os.close(tee[2])
            _reap(tee[0])
            tee = None
        raise
    finally:
        if stdin_fd is not None:
            os.close(stdin_fd)
        if tee:  # PID 1 holds the pipes now: the tee ends when it (and its own) are gone
            os.close(tee[1])
            os.close(tee[2])
    if master is not None:
        from .tty import relay
        pidfd = k.kernel.pidfd_open(pid)
        relay(master, pidfd)
        os.close(pidfd)
        os.close(master)
    _, status = os.waitpid(pid, 0)
    if tee:
        _reap(tee[0])  # all it was given is written before we return
    phase("exited")
    from .init import exit_code
    code = exit_code(status)
    for s, h in old.items():
        signal.signal(s, h)
    report(finish(c, code))
    phase("torn down")
    return code
