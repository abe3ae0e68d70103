"""`minirun run`'s container described as an OCI config.json, in its container directory.

The same format minirun-oci reads, written once per start from what `run` already
decided (the record's Config and rootfs.py's mount plan): a few dicts and one small
file, no new import on the start path but this module. What OCI has no field for
(the overlay's layers, the network mode, the seccomp mode, whose default profile is
not copied in) goes into annotations.
"""
from __future__ import annotations

import json

from .. import kernel as k

_OPTIONS = ((k.MS_RDONLY, "ro"), (k.MS_NOSUID, "nosuid"), (k.MS_NODEV, "nodev"),
            (k.MS_NOEXEC, "noexec"), (k.MS_NOATIME, "noatime"),
            (k.MS_NODIRATIME, "nodiratime"), (k.MS_RELATIME, "relatime"),
            (k.MS_STRICTATIME, "strictatime"))


def _mount(s, read_only: bool) -> dict:
    opts = [name for bit, name in _OPTIONS if s.flags & bit]
    if s.flags & k.MS_BIND:
        # --read-only: what minirun binds in (the /etc files) is read-only too; volumes
        # (recursive binds) keep what they were asked
        if read_only and not s.flags & (k.MS_REC | k.MS_RDONLY):
            opts.insert(0, "ro")
        return {"destination": s.target, "type": "bind", "source": s.source,
                "options": ["rbind" if s.flags & k.MS_REC else "bind", *opts]}
    return {"destination": s.target, "type": s.fstype, "source": s.source or s.fstype,
            "options": opts + (s.data.split(",") if s.data else [])}


def config_of(c, steps, *, lower: str, new_netns: bool, netns_path: str | None,
              cgroupns: bool, init_path: str | None) -> dict:
    """The container's bundle configuration: everything minirun-oci's init needs to
    start it (oci/child.py), from `run`'s validated Config and rootfs.py's plan."""
    from .child import DEVICES, INIT, OVERLAY
    cfg = c.config
    caps = [f"CAP_{n}" for n in cfg.caps]
    uid, gid = cfg.user or (0, 0)
    mounts, masked, ro = [], [], []
    host_devices = False
    for s in steps:
        if s.kind == "mask":
            masked.append(s.target)
        elif s.kind == "readonly":
            ro.append(s.target)
        elif s.kind == "devices":   # the default devices: implied by a tmpfs /dev
            host_devices = s.data == "host"
        else:
            mounts.append(_mount(s, cfg.read_only))
    namespaces = [{"type": t} for t in ("pid", "mount", "uts", "ipc")]
    sysctl = {}
    if new_netns or netns_path:
        namespaces.append({"type": "network", **({"path": netns_path} if netns_path
                                                  else {})})
        # ping without CAP_NET_RAW: ICMP datagram sockets for every group (podman too)
        sysctl["net.ipv4.ping_group_range"] = "0 2147483647"
    if cgroupns:  # /proc/self/cgroup shows "/"
        namespaces.append({"type": "cgroup"})
    r = cfg.resources
    resources: dict = {}
    if r.memory is not None:
        resources["memory"] = {"limit": r.memory, **({"swap": r.memory_swap}
                                                     if r.memory_swap else {})}
    cpu = {}
    if r.cpus is not None:
        cpu.update(quota=r.cpu_quota, period=100000)
    if r.cpu_shares:
        cpu["shares"] = r.cpu_shares
    if r.cpuset_cpus:
        cpu["cpus"] = r.cpuset_cpus
    if cpu:
        resources["cpu"] = cpu
    if r.pids_limit is not None:
        resources["pids"] = {"limit": r.pids_limit}
    linux: dict = {"namespaces": namespaces, "maskedPaths": masked, "readonlyPaths": ro,
                   "cgroupsPath": f"/minirun-{c.paths.owner_tag}/{c.id}"}
    if sysctl:
        linux["sysctl"] = sysctl
    if resources:
        linux["resources"] = resources
    # A user other than root has the capabilities in its bounding set only, as in Docker
    own = caps if uid == 0 else []
    annotations = {
        "io.github.minirun.name": c.name or "",
        "io.github.minirun.rootfs": lower,
        "io.github.minirun.network": cfg.network_mode,
        "io.github.minirun.seccomp": cfg.seccomp,
        OVERLAY: f"lowerdir={lower},upperdir={c.dir / 'upper'},workdir={c.dir / 'work'}"}
    if init_path:
        annotations[INIT] = "true"
    if host_devices:
        annotations[DEVICES] = "host"
    args = [init_path, "--", *cfg.command] if init_path else list(cfg.command)
    return {
        "ociVersion": "1.0.2",
        "process": {"terminal": bool(cfg.tty),
                    "user": {"uid": uid, "gid": gid,
                             "additionalGids": [gid, *cfg.groups] if cfg.user else [0]},
                    "args": args,
                    "env": [f"{n}={v}" for n, v in cfg.env.items()], "cwd": cfg.workdir,
                    "capabilities": {"bounding": caps, "effective": own, "permitted": own},
                    "noNewPrivileges": True},
        "root": {"path": str(c.dir / "merged"), "readonly": bool(cfg.read_only)},
        "hostname": cfg.hostname,
        "mounts": mounts,
        "linux": linux,
        "annotations": annotations,
    }


def write_config(c, config: dict) -> None:
    """BUNDLE/config.json, for people and tools (`minirun inspect`); the start itself
    parses the same dict, not the file."""
    with open(c.dir / "config.json", "w") as f:
        f.write(json.dumps(config))
