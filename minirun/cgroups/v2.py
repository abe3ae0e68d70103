"""cgroup v2: one directory, <mount>/minirun-<root tag>/<container id>, with the
controllers enabled in the parents' cgroup.subtree_control.

Runs here only against a fake cgroupfs (tests/unit/test_cgroups_v2.py): this machine's
controllers are all bound to v1 hierarchies."""
from __future__ import annotations

import os

from ..errors import MinirunError
from . import (CPU_PERIOD_US, V2_CONTROLLERS, Group, ensure_parent, keyed, make_dir, read,
               shares_to_weight, write, write_optional)


class V2Group(Group):
    version = 2

    @property
    def path(self) -> str:
        return self.dirs[0][1]

    def create(self, res, tag: str) -> dict[str, int]:
        path = self.path
        parent = os.path.dirname(path)
        root = os.path.dirname(parent)
        need = needed(res)
        for _ in range(5):  # the parent may go with another container meanwhile
            enable(root, need)
            ensure_parent(parent, tag)
            try:
                enable(parent, need)
                ino = make_dir(path, f"{tag}:{os.path.basename(path)}")
                break
            except FileNotFoundError:
                continue
        else:
            raise MinirunError(f"cannot create the cgroup {path}")
        self.apply(res)
        return {path: ino}

    def apply(self, res) -> None:
        d = self.path
        if res.memory is not None:
            write(d, "memory.max", str(res.memory))
            if res.memory_swap is not None:  # v2 limits swap alone: total - memory
                swap = "max" if res.memory_swap == -1 else str(res.memory_swap - res.memory)
                write_optional(d, "memory.swap.max", swap)
        if res.cpus is not None:
            write(d, "cpu.max", f"{res.cpu_quota} {CPU_PERIOD_US}")
        weight = res.cpu_weight or (shares_to_weight(res.cpu_shares) if res.cpu_shares
                                    else None)
        if weight is not None:
            write(d, "cpu.weight", str(weight))
        if res.pids_limit is not None:
            write(d, "pids.max", str(res.pids_limit))
        if res.cpuset_cpus is not None:
            write(d, "cpuset.cpus", res.cpuset_cpus)

    def kill_file(self) -> str | None:
        f = os.path.join(self.path, "cgroup.kill")
        return f if os.path.exists(f) else None

    def set_frozen(self, on: bool) -> None:
        write(self.path, "cgroup.freeze", "1" if on else "0")

    def frozen(self) -> bool | None:
        """cgroup.events says "frozen 1" once every task is stopped (cgroup.freeze is
        only the request)."""
        try:
            return keyed(read(self.path, "cgroup.events")).get("frozen") == 1
        except FileNotFoundError:
            return None

    def oom_kills(self) -> int | None:
        return keyed(read(self.path, "memory.events")).get("oom_kill")

    def stats(self) -> dict:
        d = self.path
        out: dict = {"cpu_ns": None, "mem_usage": None, "mem_limit": None, "pids": None,
                     "blk_read": None, "blk_write": None}
        try:
            out["cpu_ns"] = keyed(read(d, "cpu.stat"))["usage_usec"] * 1000
        except (OSError, KeyError):
            pass
        try:
            st = keyed(read(d, "memory.stat"))
            out["mem_usage"] = max(0, int(read(d, "memory.current"))
                                   - st.get("inactive_file", 0))
            limit = read(d, "memory.max").strip()
            out["mem_limit"] = None if limit == "max" else int(limit)
        except OSError:
            pass
        try:
            out["pids"] = int(read(d, "pids.current"))
        except OSError:
            pass
        try:
            r = w = 0
            for line in read(d, "io.stat").splitlines():
                for kv in line.split()[1:]:
                    k, _, v = kv.partition("=")
                    if k == "rbytes":
                        r += int(v)
                    elif k == "wbytes":
                        w += int(v)
            out["blk_read"], out["blk_write"] = r, w
        except OSError:
            pass
        return out


def needed(res) -> set[str]:
    """The controllers the limits need (the others are enabled when available)."""
    out = set()
    if res.memory is not None:
        out.add("memory")
    if res.cpus is not None or res.cpu_shares is not None or res.cpu_weight is not None:
        out.add("cpu")
    if res.pids_limit is not None:
        out.add("pids")
    if res.cpuset_cpus is not None:
        out.add("cpuset")
    return out


def enable(d: str, need: set[str]) -> None:
    """Enable for d's children every controller of V2_CONTROLLERS it has (one write);
    fail only if one the limits need is missing."""
    try:
        avail = read(d, "cgroup.controllers").split()
        on = {c.lstrip("+") for c in read(d, "cgroup.subtree_control").split()}
    except FileNotFoundError:
        if not os.path.isdir(d):
            raise
        avail, on = [], set()
    add = [c for c in V2_CONTROLLERS if c in avail and c not in on]
    if add:
        try:
            write(d, "cgroup.subtree_control", " ".join("+" + c for c in add))
            on |= set(add)
        except MinirunError:
            if need - on:
                raise
    missing = sorted(need - on)
    if missing:
        raise MinirunError(f"the cgroup v2 controller {missing[0]!r} is not available in "
                           f"{d} (cgroup.controllers: {' '.join(avail) or 'none'})")
