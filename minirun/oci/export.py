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


def _mount(s) -> dict:
    opts = [name for bit, name in _OPTIONS if s.flags & bit]
    if s.flags & k.MS_BIND:
        return {"destination": s.target, "type": "bind", "source": s.source,
                "options": ["rbind" if s.flags & k.MS_REC else "bind", *opts]}
    return {"destination": s.target, "type": s.fstype, "source": s.source or s.fstype,
            "options": opts + (s.data.split(",") if s.data else [])}


def config_of(c, steps, new_netns: bool) -> dict:
    cfg = c.config
    caps = [f"CAP_{n}" for n in cfg.caps]
    uid, gid = cfg.user or (0, 0)
    mounts, masked, ro = [], [], []
    for s in steps:
        if s.kind == "mask":
            masked.append(s.target)
        elif s.kind == "readonly":
            ro.append(s.target)
        elif s.kind != "devices":   # the default devices: implied by a tmpfs /dev
            mounts.append(_mount(s))
    namespaces = [{"type": t} for t in ("pid", "mount", "uts", "ipc")]
    if new_netns:
        namespaces.append({"type": "network"})
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
    if resources:
        linux["resources"] = resources
    return {
        "ociVersion": "1.0.2",
        "process": {"terminal": bool(cfg.tty), "user": {"uid": uid, "gid": gid},
                    "args": list(cfg.command),
                    "env": [f"{n}={v}" for n, v in cfg.env.items()], "cwd": cfg.workdir,
                    "capabilities": {"bounding": caps, "effective": caps,
                                     "permitted": caps},
                    "noNewPrivileges": True},
        "root": {"path": str(c.dir / "merged"), "readonly": bool(cfg.read_only)},
        "hostname": cfg.hostname,
        "mounts": mounts,
        "linux": linux,
        "annotations": {"io.github.minirun.name": c.name or "",
                        "io.github.minirun.rootfs": ":".join(cfg.lowers) or cfg.rootfs,
                        "io.github.minirun.network": cfg.network_mode,
                        "io.github.minirun.seccomp": cfg.seccomp,
                        **({"io.github.minirun.init": "true"} if cfg.init else {})},
    }


def write_config(c, steps, new_netns: bool) -> None:
    with open(c.dir / "config.json", "w") as f:
        f.write(json.dumps(config_of(c, steps, new_netns)))
