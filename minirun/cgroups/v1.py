"""cgroup v1: one directory per controller hierarchy (cpu, cpuacct, cpuset, memory, pids,
blkio, freezer), each <mount>/minirun-<root tag>/<container id>."""
from __future__ import annotations

import errno
import os

from ..errors import MinirunError
from . import (CPU_PERIOD_US, Group, ensure_parent, keyed, make_dir, read, weight_to_shares,
               write, write_optional)

UNLIMITED = 1 << 62  # memory.limit_in_bytes reads back as ~2^63 rounded to a page


class V1Group(Group):
    version = 1

    def create(self, res, tag: str) -> dict[str, int]:
        inodes = {}
        for ctrls, path in self.dirs:
            parent = os.path.dirname(path)
            for _ in range(5):  # the parent may go with another root's last container
                ensure_parent(parent, tag)
                try:
                    if "cpuset" in ctrls:  # a new cpuset has no CPU and no memory node
                        _inherit_cpuset(os.path.dirname(parent), parent)
                    inodes[path] = make_dir(path, f"{tag}:{os.path.basename(path)}")
                    break
                except FileNotFoundError:
                    continue
            else:
                raise MinirunError(f"cannot create the cgroup {path}")
        self.apply(res)
        return inodes

    def _need(self, controller: str, flag: str) -> str:
        d = self.dir_for(controller)
        if d is None:
            raise MinirunError(f"{flag} needs the cgroup controller {controller!r}, which "
                               "is not mounted")
        return d

    def apply(self, res) -> None:
        if res.memory is not None:
            mem = self._need("memory", "--memory")
            write(mem, "memory.limit_in_bytes", str(res.memory))
            if res.memory_swap is not None:  # absent without swap accounting
                write_optional(mem, "memory.memsw.limit_in_bytes", str(res.memory_swap))
        if res.cpus is not None:
            cpu = self._need("cpu", "--cpus")
            write(cpu, "cpu.cfs_period_us", str(CPU_PERIOD_US))
            write(cpu, "cpu.cfs_quota_us", str(res.cpu_quota))
        shares = res.cpu_shares or (weight_to_shares(res.cpu_weight) if res.cpu_weight
                                    else None)
        if shares is not None:
            write(self._need("cpu", "--cpu-shares"), "cpu.shares", str(shares))
        if res.pids_limit is not None:
            write(self._need("pids", "--pids-limit"), "pids.max", str(res.pids_limit))
        cs = self.dir_for("cpuset")
        if res.cpuset_cpus is not None:
            cs = self._need("cpuset", "--cpuset-cpus")
        if cs is not None:
            _inherit_cpuset(os.path.dirname(cs), cs, res.cpuset_cpus)

    def set_frozen(self, on: bool) -> None:
        write(self.dir_for("freezer"), "freezer.state", "FROZEN" if on else "THAWED")

    def frozen(self) -> bool | None:
        """FREEZING (in progress) is not yet frozen."""
        d = self.dir_for("freezer")
        if d is None:
            return None
        try:
            return read(d, "freezer.state").strip() == "FROZEN"
        except FileNotFoundError:
            return None

    def oom_kills(self) -> int | None:
        mem = self.dir_for("memory")
        return keyed(read(mem, "memory.oom_control")).get("oom_kill") if mem else None

    def stats(self) -> dict:
        out: dict = {"cpu_ns": None, "mem_usage": None, "mem_limit": None, "pids": None,
                     "blk_read": None, "blk_write": None}
        acct = self.dir_for("cpuacct")
        if acct:
            out["cpu_ns"] = int(read(acct, "cpuacct.usage"))
        mem = self.dir_for("memory")
        if mem:
            st = keyed(read(mem, "memory.stat"))
            usage = int(read(mem, "memory.usage_in_bytes"))
            out["mem_usage"] = max(0, usage - st.get("total_inactive_file", 0))
            limit = int(read(mem, "memory.limit_in_bytes"))
            out["mem_limit"] = None if limit >= UNLIMITED else limit
        pids = self.dir_for("pids")
        if pids:
            out["pids"] = int(read(pids, "pids.current"))
        blk = self.dir_for("blkio")
        if blk:
            try:
                text = read(blk, "blkio.throttle.io_service_bytes_recursive")
            except OSError:
                text = None
            if text is not None:
                r = w = 0
                for line in text.splitlines():
                    parts = line.split()
                    if len(parts) == 3 and parts[1] == "Read":
                        r += int(parts[2])
                    elif len(parts) == 3 and parts[1] == "Write":
                        w += int(parts[2])
                out["blk_read"], out["blk_write"] = r, w
        return out


def _inherit_cpuset(parent: str, d: str, cpus: str | None = None) -> None:
    """cpuset.cpus (the asked ones, else the parent's) and cpuset.mems from the parent,
    if `d` has none yet (or new CPUs were asked for)."""
    try:
        have = read(d, "cpuset.cpus").strip()
    except OSError as e:
        if e.errno == errno.ENOENT and not os.path.isdir(d):
            raise FileNotFoundError(d) from None
        raise
    if cpus is None and have:
        return
    write(d, "cpuset.cpus", cpus or read(parent, "cpuset.cpus").strip())
    if not read(d, "cpuset.mems").strip():
        write(d, "cpuset.mems", read(parent, "cpuset.mems").strip())
