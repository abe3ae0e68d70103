"""`minirun-oci`: runc's command line, for engines (conmon, containerd's runc shim).

argparse, not click: an engine calls the runtime several times per container, and
click's import alone costs more than this whole parser. Global options go before the
verb, as engines put them. Errors: one line on stderr (and in --log, as text or as
the JSON lines engines read back), exit code 125 for minirun's errors (non-zero is all
an engine looks at); --debug adds the traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ..errors import MinirunError, NotFound

_log_file: str | None = None
_log_json = False


def log(level: str, msg: str) -> None:
    """Errors and warnings into --log; without one, warnings go to stderr (errors are
    said there by main anyway)."""
    if not _log_file:
        if level == "warning":
            print(f"minirun-oci: warning: {msg}", file=sys.stderr)
        return
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    line = (json.dumps({"level": level, "msg": msg, "time": now}) if _log_json
            else f'time="{now}" level={level} msg="{msg}"')
    try:
        with open(_log_file, "a") as f:
            f.write(line + "\n")
    except OSError:
        pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="minirun-oci", description="minirun as an OCI runtime "
                                "(the command line of runc)")
    p.add_argument("--root", default=None, help="state directory (default "
                   "/run/minirun-oci)")
    p.add_argument("--log", default=None, help="append errors and warnings to FILE")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    p.add_argument("--systemd-cgroup", action="store_true",
                   help="cgroupsPath is slice:prefix:name; minirun makes "
                   "/slice/prefix-name.scope itself (no systemd unit)")
    p.add_argument("--debug", action="store_true")
    p.add_argument("--rootless", default=None, help="accepted: only 'false' works")
    p.add_argument("--criu", default=None, help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="verb", metavar="COMMAND")
    sub.required = True

    def verb(name, help_):
        return sub.add_parser(name, help=help_)

    for name in ("create", "run"):
        c = verb(name, f"{name} a container from a bundle")
        c.add_argument("--bundle", "-b", default=".")
        c.add_argument("--pid-file", default=None)
        c.add_argument("--console-socket", default=None)
        c.add_argument("--no-pivot", action="store_true")
        c.add_argument("--no-new-keyring", action="store_true",
                       help="accepted: minirun never makes a session keyring")
        c.add_argument("--preserve-fds", type=int, default=0)
        if name == "run":
            c.add_argument("--detach", "-d", action="store_true")
        c.add_argument("id")
    verb("start", "start a created container").add_argument("id")
    s = verb("state", "print a container's state JSON")
    s.add_argument("id")
    k = verb("kill", "send a signal to a container's init (or all its processes)")
    k.add_argument("--all", "-a", action="store_true")
    k.add_argument("id")
    k.add_argument("signal", nargs="?", default="SIGTERM")
    d = verb("delete", "delete a stopped container (--force: any)")
    d.add_argument("--force", "-f", action="store_true")
    d.add_argument("id")
    e = verb("exec", "run a further process in a container")
    e.add_argument("--process", "-p", required=True)
    e.add_argument("--detach", "-d", action="store_true")
    e.add_argument("--pid-file", default=None)
    e.add_argument("--console-socket", default=None)
    e.add_argument("--tty", "-t", action="store_true", help="accepted (the process "
                   "file's terminal decides)")
    e.add_argument("--preserve-fds", type=int, default=0)
    e.add_argument("id")
    ps = verb("ps", "the processes of a container")
    ps.add_argument("--format", "-f", choices=("table", "json"), default="table")
    ps.add_argument("id")
    ps.add_argument("ps_args", nargs=argparse.REMAINDER)
    ls = verb("list", "the containers under --root")
    ls.add_argument("--format", "-f", choices=("table", "json"), default="table")
    ls.add_argument("--quiet", "-q", action="store_true")
    sp = verb("spec", "write a default config.json")
    sp.add_argument("--bundle", "-b", default=".")
    sp.add_argument("--rootless", dest="spec_rootless", action="store_true")
    verb("features", "what this runtime supports, as JSON")
    verb("pause", "freeze a container's processes").add_argument("id")
    verb("resume", "thaw a paused container").add_argument("id")
    return p


def main(argv: list[str] | None = None) -> None:
    global _log_file, _log_json
    args = _parser().parse_args(argv)
    _log_file, _log_json = args.log, args.log_format == "json"
    try:
        code = _dispatch(args)
    except MinirunError as e:
        print(f"minirun-oci: {e}", file=sys.stderr)
        log("error", str(e))
        if args.debug:
            raise
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code or 0)


def _dispatch(args) -> int:
    from . import state as ostate
    root = args.root or ostate.DEFAULT_ROOT
    if args.rootless not in (None, "false", "auto"):
        raise MinirunError("--rootless is not supported: minirun-oci runs as root")
    v = args.verb
    if v in ("create", "run"):
        if args.preserve_fds:
            raise MinirunError("--preserve-fds is not supported")
        from .create import create, delete, start
        st = create(root, args.id, args.bundle, args.pid_file, args.console_socket,
                    args.no_pivot, args.systemd_cgroup, log)
        if v == "create":
            return 0
        start(st, log)
        if args.detach:
            return 0
        return _wait(st, delete)
    if v == "spec":
        return _spec(args)
    if v == "features":
        print(json.dumps(features(), indent=2))
        return 0
    if v == "list":
        return _list(root, args)
    from . import create as ops
    if v == "delete":
        try:
            st = ostate.load(root, args.id)
        except NotFound:
            if not args.force:
                raise
            ops.remove_leftover(root, args.id)  # a create killed before its state.json
            return 0
        ops.delete(st, args.force, log)
        return 0
    st = ostate.load(root, args.id)
    if v == "start":
        ops.start(st, log)
    elif v == "state":
        print(json.dumps(st.oci(), indent=2))
    elif v == "kill":
        ops.kill(st, ops.parse_signal(args.signal), args.all)
    elif v == "exec":
        if args.preserve_fds:
            raise MinirunError("--preserve-fds is not supported")
        from .execute import exec_process, load_process
        return exec_process(st, load_process(args.process), detach=args.detach,
                            pid_file=args.pid_file, console_socket=args.console_socket)
    elif v == "ps":
        return _ps(st, args)
    elif v in ("pause", "resume"):
        from .cgroup import freeze
        status = st.status()
        want = "running" if v == "pause" else "paused"
        if status != want:
            raise MinirunError(f"cannot {v} container {st.id}: it is {status}")
        freeze(st.data.get("cgroup"), v == "pause")
    return 0


def _wait(st, delete) -> int:
    """`run` without --detach: the init is our child; wait for it, then delete."""
    import signal
    from ..init import exit_code, forward_signals
    forward_signals(st.pid, (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                             signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH))
    while True:
        try:
            _, status = os.waitpid(st.pid, 0)
            break
        except InterruptedError:
            continue
    code = exit_code(status)
    delete(st, True, log)
    return code


def _spec(args) -> int:
    from .config import default_spec
    path = os.path.join(args.bundle, "config.json")
    if args.spec_rootless:
        raise MinirunError("--rootless is not supported: minirun-oci runs as root")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise MinirunError(f"{path} exists already") from None
    except OSError as e:
        raise MinirunError(f"cannot write {path}: {e.strerror}") from None
    with os.fdopen(fd, "w") as f:
        json.dump(default_spec(), f, indent=2)
        f.write("\n")
    return 0


def _list(root: str, args) -> int:
    from .state import all_states
    states = all_states(root)
    if args.quiet:
        for st in states:
            print(st.id)
        return 0
    rows = [st.oci() for st in states]
    if args.format == "json":
        print(json.dumps(rows))
        return 0
    fmt = "{:<20} {:<8} {:<10} {:<40} {}"
    print(fmt.format("ID", "PID", "STATUS", "BUNDLE", "CREATED"))
    for r in rows:
        print(fmt.format(r["id"], r["pid"], r["status"], r["bundle"], r["created"]))
    return 0


def _ps(st, args) -> int:
    from .cgroup import pids
    found = pids(st.data.get("cgroup"))
    if args.format == "json":
        print(json.dumps(found))
        return 0
    import subprocess
    out = subprocess.run(["ps", *(args.ps_args or ["-ef"])], capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise MinirunError(f"ps: {out.stderr.strip()}")
    lines = out.stdout.splitlines()
    if not lines:
        return 0
    header = lines[0].split()
    col = header.index("PID") if "PID" in header else None
    if col is None:
        raise MinirunError("ps: its output has no PID column")
    print(lines[0])
    want = set(found)
    for line in lines[1:]:
        f = line.split()
        if len(f) > col and f[col].isdigit() and int(f[col]) in want:
            print(line)
    return 0


def features() -> dict:
    from .config import (CAP_SETS, HOOKS, MOUNT_FLAGS, NAMESPACES, OCI_VERSION,
                         PROPAGATION)
    from .. import caps
    from ..seccomp import ARCHES
    return {
        "ociVersionMin": "1.0.0", "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOKS),
        "mountOptions": sorted(list(MOUNT_FLAGS) + list(PROPAGATION)),
        "linux": {
            "namespaces": sorted(NAMESPACES),
            "capabilities": [f"CAP_{c}" for c in caps.all_names()],
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": True, "archs": sorted(ARCHES),
                        "knownFlags": [], "supportedFlags": [],
                        "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                                    "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                                    "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                        "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
                                      "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ",
                                      "SCMP_CMP_NE"]},
            "apparmor": {"enabled": False}, "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
        },
        "annotations": {"io.github.minirun.capability-sets": ",".join(CAP_SETS)},
    }


if __name__ == "__main__":
    main()
