"""Becoming the configured process (the init's last step, and exec's): rlimits, OOM score,
working directory, seccomp, user and capabilities, umask, no host fd, execve.

Seccomp goes last when noNewPrivileges is set (from there on only what the filter allows);
without it, loading a filter needs CAP_SYS_ADMIN, so it goes in before the capabilities
are dropped (the filter then has to allow setuid, capset, prctl and execve, which every
ordinary profile does).

Imported before pivot_root, with everything it uses: after it, the container's root has
no Python modules to import.
"""
from __future__ import annotations

import os

from .. import caps
from .. import kernel as k
from ..errors import MinirunError
from ..init import execve, find_executable

# Where a process without PATH in its environment is looked up (as Docker does).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def set_rlimits(rlimits) -> None:
    if not rlimits:
        return
    # imported by the init before pivot_root when there are rlimits (oci/child.py)
    import resource
    for name, soft, hard in rlimits:
        try:
            resource.setrlimit(getattr(resource, name), (soft, hard))
        except (OSError, ValueError) as e:
            raise MinirunError(f"cannot set {name} to {soft}:{hard}: "
                               f"{getattr(e, 'strerror', None) or e}") from None


def enter_cwd(proc, behind_init: bool = False) -> str:
    """Enter process.cwd (made if missing, as runc and Docker do) and find the program:
    its path, or a 126/127 error. The init does this before READY, so that a command
    that cannot run fails `create`, with its exit code, not the container later.
    `behind_init`: args are `INIT -- COMMAND...` (`run --init`): COMMAND is looked up
    too, so that it fails the same way with an init as without."""
    env_path = next((e[5:] for e in proc.env if e.startswith("PATH=")), DEFAULT_PATH)
    try:
        os.makedirs(proc.cwd, exist_ok=True)
        os.chdir(proc.cwd)
        cwd = os.getcwd()
    except OSError as e:
        raise MinirunError(f"cannot enter working directory {proc.cwd}: {e.strerror}") from None
    if not cwd.startswith("/"):  # "(unreachable)/...": outside the container's root
        raise MinirunError(f"working directory {proc.cwd} is outside the container")
    path = find_executable(proc.args[0], env_path)
    if behind_init and "--" in proc.args[:-1]:
        find_executable(proc.args[proc.args.index("--") + 1], env_path)
    return path


def become(proc, seccomp_bpf: bytes | None, path: str | None = None) -> None:
    """Never returns: execs proc.args, or raises a MinirunError (126/127 for the exec).
    `path`: the program, when enter_cwd() has already been done."""
    set_rlimits(proc.rlimits)
    if proc.oom_score_adj is not None:
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(proc.oom_score_adj))
        except OSError as e:
            raise MinirunError(f"cannot set oomScoreAdj: {e.strerror}") from None
    env = dict(e.split("=", 1) for e in proc.env)
    if path is None:
        path = enter_cwd(proc)
    if seccomp_bpf is not None and not proc.no_new_privs:
        k.kernel.seccomp_load_bpf(seccomp_bpf)
    try:
        caps.apply_sets(proc.caps, proc.uid, proc.gid, proc.gids, proc.no_new_privs)
    except OSError as e:
        raise MinirunError(f"cannot set the user {proc.uid}:{proc.gid} or its "
                           f"capabilities: {e.strerror or e}") from None
    if proc.umask is not None:
        os.umask(proc.umask)
    k.kernel.cloexec_from(3)
    if seccomp_bpf is not None and proc.no_new_privs:
        k.kernel.seccomp_load_bpf(seccomp_bpf)
    execve(path, list(proc.args), env)


def seccomp_program(spec_seccomp: str | None, proc) -> bytes | None:
    """The BPF program of config.json's profile (compiled once, then cached by seccomp.py)."""
    if spec_seccomp is None:
        return None
    from ..seccomp import program_for
    return program_for("custom", spec_seccomp, proc.caps.get("effective", ()))


def connect_console(path: str):
    """The engine's --console-socket, connected: the pty master goes over it (create,
    exec with process.terminal)."""
    import socket
    console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        console.connect(path)
    except OSError as e:
        console.close()
        raise MinirunError(f"cannot connect to the console socket {path}: "
                           f"{e.strerror}") from None
    return console
