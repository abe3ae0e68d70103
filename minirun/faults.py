"""Fault injection for tests: make one named setup step fail, or SIGKILL minirun at an exact point.

`MINIRUN_FAULT=attach.veth minirun run ...` raises at that step, so tests can
check that every failure path leaves nothing behind and exits 125.

`MINIRUN_KILL_AT=LABEL[#N]` SIGKILLs the process the N-th time (default: the
first) it reaches the point LABEL: inside an atomic write, between the
temporary file and the rename (`write:containers/state.json`), and around
each journal step (`intent:net.veth` after the intent is on disk and before
the side effect, `done:net.veth` after the side effect and before it is
marked done). `MINIRUN_PAUSE_AT=LABEL=FILE` stops there instead until FILE is
removed, so a test can run another command exactly in that window.
`MINIRUN_TRACE_POINTS=FILE` appends every point reached (one
label a line), so a test can list them all from one normal run and then kill
at each in turn: the crash paths are covered deterministically, not by luck.

`MINIRUN_PHASES=FILE` appends `MONOTONIC_NS PID LABEL` for every phase mark
(`phase()`) and every point, from every process of a start (minirun, PID 1
until its exec): `scripts/bench --profile` turns them into a per-phase
breakdown of one start.

Costs one dictionary lookup per point when unused.
"""
from __future__ import annotations

import os
import re

from .errors import MinirunError

STEPS = ("prepare.address", "prepare.ports", "attach.bridge", "attach.firewall-network",
         "attach.netns", "attach.veth", "attach.address", "attach.ports", "start.go")

_KILL_AT = os.environ.get("MINIRUN_KILL_AT")
# LABEL=FILE: at LABEL, create FILE and wait until someone removes it (a race made exact)
_PAUSE_AT = os.environ.get("MINIRUN_PAUSE_AT")
_TRACE = os.environ.get("MINIRUN_TRACE_POINTS")
_PHASES = os.environ.get("MINIRUN_PHASES")
# opened once (O_APPEND: the lines of parent and child interleave whole); PID 1 keeps
# it open past its fd sweep (init.py) and loses it at exec (O_CLOEXEC)
phase_fd = (os.open(_PHASES, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            if _PHASES else None)
_seen: dict[str, int] = {}
# ids, addresses and numbers vary from run to run; labels must not
_VARIABLE = re.compile(r"[0-9a-f]{12,64}|\d+(\.\d+){3}|\d+")


def check(step: str) -> None:
    if os.environ.get("MINIRUN_FAULT") == step:
        raise MinirunError(f"injected fault at {step}")


def phase(label: str) -> None:
    """A mark of the start-up timeline (MINIRUN_PHASES); nothing when unused."""
    if phase_fd is not None:
        import time
        os.write(phase_fd, f"{time.monotonic_ns()} {os.getpid()} {label}\n".encode())


def point(what: str, path=None) -> None:
    """A crash point. `path` (of an atomic write) becomes part of the label, its
    variable parts masked: write:containers/state.json, write:ipam/*, write:names/*."""
    if _KILL_AT is None and _TRACE is None and _PAUSE_AT is None and phase_fd is None:
        return
    label = what
    if path is not None:
        parent, name = os.path.basename(os.path.dirname(path)), os.path.basename(path)
        if len(parent) == 64:
            parent = "containers"
        label = f"{what}:{_VARIABLE.sub('*', parent)}/{_VARIABLE.sub('*', name)}"
    n = _seen[label] = _seen.get(label, 0) + 1
    if phase_fd is not None:
        phase(f"  {label}")
    if _TRACE is not None:
        with open(_TRACE, "a") as f:
            f.write(f"{label}#{n}\n")
    if _KILL_AT is not None and _KILL_AT in (label, f"{label}#{n}"):
        import signal
        os.kill(os.getpid(), signal.SIGKILL)
    if _PAUSE_AT is not None and _PAUSE_AT.partition("=")[0] in (label, f"{label}#{n}"):
        import time
        flag = _PAUSE_AT.partition("=")[2]
        open(flag, "w").close()
        while os.path.exists(flag):
            time.sleep(0.01)
