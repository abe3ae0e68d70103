"""The container's cgroup, at linux.cgroupsPath, with linux.resources: minirun's cgroup
backends (cgroups/) do the directories and the limits; this adds the path rules of the
OCI spec, the v1 device controller and the freezer.

Paths: "/a/b" is below each hierarchy's root; a relative path too (minirun does not
nest it under the caller's own cgroup); no path is "/minirun-oci/ID". With
--systemd-cgroup the path is systemd's "slice:prefix:name" form, and minirun makes the
directory /slice/prefix-name.scope itself with cgroupfs: it talks to no systemd.

Ownership: every directory minirun makes carries minirun's xattr (cgroups/__init__.py),
"<tag>:<name>", the tag naming the --root; `delete` removes only those. A cgroupsPath
that exists already is joined and left alone.
"""
from __future__ import annotations

import errno
import os

from .. import cgroups as cg
from ..errors import MinirunError

# What every container may use whatever its rules say: its own /dev (as in runc), and
# the devices of linux.devices.
DEFAULT_ALLOW = ("c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
                 "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm")


def tag_of(root: str) -> str:
    from ..state import sha256_hex
    return "minirun-oci-" + sha256_hex(os.path.abspath(root))[:8]


def rel_path(path: str | None, cid: str, systemd: bool) -> str:
    if not path:
        return f"/minirun-oci/{cid}"
    if systemd and ":" in path:
        parts = path.split(":")
        if len(parts) != 3 or not all(parts):
            raise MinirunError(f"cgroupsPath {path!r}: expected slice:prefix:name")
        sl, prefix, name = parts
        return f"/{sl}/{prefix}-{name}.scope"
    p = os.path.normpath("/" + path.lstrip("/"))
    if p == "/" or ".." in p.split("/"):
        raise MinirunError(f"cgroupsPath {path!r} is not a cgroup below the root")
    return p


def _devices_mount() -> str | None:
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                pre, _, post = line.partition(" - ")
                rest = post.split()
                if len(rest) >= 3 and rest[0] == "cgroup" and "devices" in rest[2].split(","):
                    return pre.split()[4]
    except OSError:
        pass
    return None


def create(spec, cid: str, root: str, systemd: bool) -> dict | None:
    """Make the cgroup, write its limits; returns what state.json keeps of it."""
    layout = cg.detect()
    rel = rel_path(spec.cgroups_path, cid, systemd)
    if layout is None:
        if spec.resources.any() or spec.device_rules or spec.cgroup_extra:
            raise MinirunError("linux.resources needs cgroups, and none are mounted")
        return None
    tag = tag_of(root)
    dirs = [[list(ctrls), m + rel] for m, ctrls in layout.hierarchies.items()]
    g = cg.group_of(layout.version, dirs)
    for _c, p in g.dirs:
        _make_ancestors(os.path.dirname(os.path.dirname(p)), tag)
    data = {"version": layout.version, "dirs": dirs, "tag": tag, "rel": rel,
            "owned": True, "devices": None}
    try:
        data["inodes"] = g.create(spec.resources, tag)
    except FileExistsError:
        data["owned"] = False   # an engine's own cgroup: joined, limits written, kept
        g.apply(spec.resources)
    apply_extra(g, layout.version, spec.cgroup_extra)
    if spec.device_rules:
        data["devices"] = _devices(spec, rel, tag, layout.version)
    return data


# config.py's extra resources -> (controller, file, value format) per cgroup version;
# None: not on this version (refused); the kernel limits are written where they exist.
_V1 = {"cpu.period": ("cpu", "cpu.cfs_period_us"), "cpu.quota": ("cpu", "cpu.cfs_quota_us"),
       "cpu.mems": ("cpuset", "cpuset.mems"),
       "memory.reservation": ("memory", "memory.soft_limit_in_bytes"),
       "memory.swappiness": ("memory", "memory.swappiness"),
       "memory.disableOOMKiller": ("memory", "memory.oom_control"),
       "memory.kernel": ("memory", "memory.kmem.limit_in_bytes"),
       "memory.kernelTCP": ("memory", "memory.kmem.tcp.limit_in_bytes")}
_V2 = {"cpu.mems": ("cpuset", "cpuset.mems"),
       "memory.reservation": ("memory", "memory.low")}
_OPTIONAL = ("memory.kernel", "memory.kernelTCP")


def apply_extra(g, version: int, extra) -> None:
    """The resources Resources has no field for. Period before quota (v1), both in one
    cpu.max line on v2."""
    values = dict(extra)
    if version == 2:
        if "cpu.period" in values or "cpu.quota" in values:
            quota = values.get("cpu.quota", -1)
            cg.write(g.path, "cpu.max", f"{'max' if quota < 0 else quota} "
                     f"{values.get('cpu.period', 100000)}")
        for name, value in extra:
            if name in ("cpu.period", "cpu.quota") or name in _OPTIONAL:
                continue  # v2 has no kernel memory limits: ignored, as runc does
            if name not in _V2:
                raise MinirunError(f"linux.resources.{name} is not supported on cgroup v2")
            cg.write(g.path, _V2[name][1], str(value))
        return
    for name, value in extra:
        ctrl, fname = _V1[name]
        d = g.dir_for(ctrl)
        if d is None:
            raise MinirunError(f"linux.resources.{name} needs the cgroup controller "
                               f"{ctrl!r}, which is not mounted")
        if name in _OPTIONAL and not os.path.exists(os.path.join(d, fname)):
            continue
        cg.write(d, fname, str(value))


def _make_ancestors(path: str, tag: str) -> None:
    """The directories above the container's parent, each tagged if made here (a cpuset
    directory gets its parent's CPUs and memory nodes, or nothing can join it)."""
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for p in reversed(missing):
        cg.ensure_parent(p, tag)
        if os.path.exists(os.path.join(p, "cpuset.cpus")):
            from ..cgroups.v1 import _inherit_cpuset
            _inherit_cpuset(os.path.dirname(p), p)


def _devices(spec, rel: str, tag: str, version: int) -> str | None:
    if version != 1:
        raise MinirunError("linux.resources.devices: device rules need the cgroup v1 "
                           "device controller here (cgroup v2 needs eBPF, not supported)")
    mount = _devices_mount()
    if mount is None:
        raise MinirunError("linux.resources.devices: the device cgroup is not mounted")
    path = mount + rel
    _make_ancestors(os.path.dirname(path), tag)
    try:
        cg.make_dir(path, f"{tag}:{os.path.basename(path)}")
    except FileExistsError:
        pass
    for rule, allow in zip(spec.device_rules, spec.device_allow):
        cg.write(path, "devices.allow" if allow else "devices.deny", rule)
    for rule in DEFAULT_ALLOW:
        cg.write(path, "devices.allow", rule)
    for d in spec.devices:  # what linux.devices gives the container, it may use
        if d.type in ("c", "u", "b"):
            cg.write(path, "devices.allow", f"{'b' if d.type == 'b' else 'c'} "
                     f"{d.major}:{d.minor} rwm")
    return path


def _all_dirs(data: dict | None) -> list[str]:
    if not data:
        return []
    return [p for _c, p in data["dirs"]] + ([data["devices"]] if data.get("devices") else [])


def join(data: dict | None, pid: int) -> None:
    for p in _all_dirs(data):
        cg.write(p, "cgroup.procs", str(pid))


def pids(data: dict | None) -> list[int]:
    out: set[int] = set()
    for p in _all_dirs(data):
        try:
            out |= {int(x) for x in cg.read(p, "cgroup.procs").split()}
        except OSError:
            pass
    return sorted(out)


def _freezer(data: dict | None) -> str | None:
    if not data:
        return None
    if data["version"] == 2:
        return data["dirs"][0][1]
    for ctrls, p in data["dirs"]:
        if "freezer" in ctrls:
            return p
    return None


def frozen(data: dict | None) -> bool:
    d = _freezer(data)
    if d is None:
        return False
    try:
        if data["version"] == 2:
            return "frozen 1" in cg.read(d, "cgroup.events")
        return cg.read(d, "freezer.state").strip() in ("FROZEN", "FREEZING")
    except OSError:
        return False


def freeze(data: dict | None, on: bool) -> None:
    d = _freezer(data)
    if d is None:
        raise MinirunError("pause/resume need the cgroup freezer, and this container has none")
    if data["version"] == 2:
        cg.write(d, "cgroup.freeze", "1" if on else "0")
        return
    cg.write(d, "freezer.state", "FROZEN" if on else "THAWED")
    if on:  # FREEZING until every task has stopped
        import time
        for _ in range(500):
            if cg.read(d, "freezer.state").strip() == "FROZEN":
                return
            time.sleep(0.01)
        raise MinirunError("the container did not freeze")


def remove(data: dict | None) -> list:
    """Kill what is left in the cgroup and remove what minirun made of it."""
    if not data:
        return []
    tag = data["tag"]
    failures = []
    if data.get("owned"):
        inodes = data.get("inodes") or {}
        dirs = [(c, p, cg._proof(p, f"{tag}:{os.path.basename(p)}", inodes.get(p)))
                for c, p in data["dirs"]]
        failures += cg.remove_group(data["version"], dirs, tag)
    dev = data.get("devices")
    if dev:
        try:
            ours = os.getxattr(dev, cg.XATTR).decode() == f"{tag}:{os.path.basename(dev)}"
        except OSError as e:
            ours = e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP)
        if ours:
            try:
                os.rmdir(dev)
            except OSError:
                pass
    for p in _all_dirs(data):
        _prune_ancestors(os.path.dirname(p), tag)
    return failures


def _prune_ancestors(path: str, tag: str) -> None:
    """The directories minirun made above the container's, once empty."""
    while path and path != "/sys/fs/cgroup" and os.path.dirname(path) != "/sys/fs/cgroup":
        try:
            if os.getxattr(path, cg.XATTR).decode() != tag:
                return
            os.rmdir(path)
        except OSError:
            return
        path = os.path.dirname(path)
