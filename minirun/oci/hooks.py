"""The OCI lifecycle hooks: each runs with the container's state JSON on its stdin.

    prestart, createRuntime   create, runtime namespace, after the namespaces exist
    createContainer           create, inside the container's namespaces, before pivot_root
    startContainer            start, inside the container, right before the user's program
    poststart                 start, runtime namespace, once the program runs
    poststop                  delete, runtime namespace

A failing hook of the first four fails the operation; poststart and poststop failures
are logged and the operation goes on, as the spec says.
"""
from __future__ import annotations

import json
import os

from ..errors import MinirunError


def run(hooks, name: str, state: dict, warn=None) -> None:
    """Run every hook of `name`; raise on the first failure, or with `warn` (a
    log(level, msg) function: poststart, poststop) log it and run the next one."""
    if not hooks:
        return
    data = json.dumps(state).encode()
    for h in hooks:
        try:
            _run_one(h, name, data)
        except MinirunError as e:
            if warn is None:
                raise
            warn("warning", str(e))


def _run_one(h, name: str, data: bytes) -> None:
    import subprocess  # only when there is a hook: `minirun run` has none
    env = dict(e.split("=", 1) for e in h.env)
    try:
        res = subprocess.run(list(h.args), executable=h.path, input=data,
                             env=env, capture_output=True, timeout=h.timeout,
                             close_fds=True)
    except subprocess.TimeoutExpired:
        raise MinirunError(f"{name} hook {h.path} timed out after {h.timeout}s") from None
    except OSError as e:
        raise MinirunError(f"{name} hook {h.path}: {e.strerror}") from None
    if res.returncode != 0:
        err = res.stderr.decode(errors="replace").strip().splitlines()
        raise MinirunError(f"{name} hook {h.path} exited with {res.returncode}"
                           + (f": {err[-1]}" if err else ""))


def from_json(items) -> list:
    from .config import Hook
    return [Hook(h["path"], tuple(h["args"]), tuple(h["env"]), h["timeout"])
            for h in items or ()]


def to_json(hooks) -> list:
    return [h._asdict() for h in hooks]


def run_in_child(hooks, name: str, state: dict) -> None:
    """A hook run by the container's init (createContainer, startContainer): a plain
    fork+exec, no subprocess machinery in a process with no Python threads to spare."""
    data = json.dumps(state).encode()
    for h in hooks:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.dup2(r, 0)
                os.close(w)
                os.execve(h.path, list(h.args), dict(e.split("=", 1) for e in h.env))
            finally:
                os._exit(127)
        os.close(r)
        try:
            os.write(w, data)
        except OSError:
            pass
        os.close(w)
        status = _wait(pid, h.timeout)
        if status is None:
            raise MinirunError(f"{name} hook {h.path} timed out after {h.timeout}s")
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise MinirunError(f"{name} hook {h.path} exited with {code}")


def _wait(pid: int, timeout: int | None) -> int | None:
    """The hook's wait status; None (and the hook killed) once `timeout` has passed."""
    if timeout is None:
        return os.waitpid(pid, 0)[1]
    import time
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.005)
