"""The state of one OCI container: the directory ROOT/ID (--root, default
/run/minirun-oci) with state.json and, until `start`, the fifo its init waits on.

    state.json   id, pid and its start time (a reused PID is not the container),
                 bundle, annotations, creation time, the cgroup made for it, the hooks
                 still to run (poststart, poststop) and what `exec` must join
    exec.fifo    exists from `create` until `start` has released the init
    execd.fifo   held open by the init until its exec: `start` reads it to its end, so
                 the poststart hooks run once the user's program does (runtime.md)

The status is derived, never stored: the init alive and create not done -> creating;
the init alive and the fifo there -> created;
alive and frozen -> paused; alive -> running; otherwise stopped.
"""
from __future__ import annotations

import json
import os
import re
import time

from ..errors import MinirunError, NotFound, UsageError
from ..fsutil import atomic_write
from ..procs import proc_start_time, process_alive
from .config import OCI_VERSION

DEFAULT_ROOT = "/run/minirun-oci"
FIFO = "exec.fifo"
EXECD = "execd.fifo"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}")


def check_id(cid: str) -> str:
    if not _ID.fullmatch(cid or ""):
        raise UsageError(f"invalid container id {cid!r}: letters, digits and _.+- only, "
                         "at most 128")
    return cid


class State:
    def __init__(self, root: str, cid: str, data: dict):
        self.root, self.id, self.data = root, cid, data

    @property
    def dir(self) -> str:
        return os.path.join(self.root, self.id)

    @property
    def fifo(self) -> str:
        return os.path.join(self.dir, FIFO)

    @property
    def execd(self) -> str:
        return os.path.join(self.dir, EXECD)

    @property
    def pid(self) -> int:
        return self.data.get("pid") or 0

    def alive(self) -> bool:
        return process_alive(self.pid, self.data.get("pid_start"))

    def status(self) -> str:
        if not self.alive():
            return "stopped"
        if self.data.get("creating"):   # until the init is ready, blocked on the fifo
            return "creating"
        if os.path.exists(self.fifo):
            return "created"
        from .cgroup import frozen
        if frozen(self.data.get("cgroup")):
            return "paused"
        return "running"

    def oci(self) -> dict:
        """The spec's state JSON (what `state` prints and hooks read on stdin)."""
        status = self.status()
        return {"ociVersion": OCI_VERSION, "id": self.id, "status": status,
                "pid": self.pid if status != "stopped" else 0,
                "bundle": self.data.get("bundle", ""),
                "rootfs": self.data.get("rootfs", ""),
                "created": self.data.get("created", ""),
                "owner": "",
                "annotations": self.data.get("annotations") or {}}

    def save(self) -> None:
        atomic_write(os.path.join(self.dir, "state.json"), json.dumps(self.data), 0o600)


def make(root: str, cid: str, data: dict) -> State:
    """The container's directory; refuses an id in use."""
    check_id(cid)
    os.makedirs(root, mode=0o700, exist_ok=True)
    st = State(root, cid, data)
    try:
        os.mkdir(st.dir, 0o700)
    except FileExistsError:
        raise MinirunError(f"container {cid} already exists") from None
    data.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime()))
    return st


def load(root: str, cid: str) -> State:
    check_id(cid)
    path = os.path.join(root, cid, "state.json")
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise NotFound(f"container {cid} does not exist") from None
    except (OSError, ValueError) as e:
        raise MinirunError(f"cannot read the state of container {cid}: {e}") from None
    return State(root, cid, data)


def all_states(root: str) -> list[State]:
    out = []
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return out
    for n in names:
        try:
            out.append(load(root, n))
        except MinirunError:
            continue  # a create under way, or not ours
    return out


def record_pid(st: State, pid: int) -> None:
    st.data["pid"], st.data["pid_start"] = pid, proc_start_time(pid)
