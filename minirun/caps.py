"""Capabilities and no_new_privs: the only module that imports prctl (python-prctl).

The container gets a small default set instead of root's full set: podman's
eleven (enough for ordinary daemons to bind low ports, change users and own
files) plus NET_RAW, because busybox ping needs a raw socket and pinging
between containers is part of the lesson. MKNOD and AUDIT_WRITE (in Docker's
set) stay out: minirun has no device cgroup to stop a created block device
from being opened.
The bounding set is reduced too, so nothing inside can regain a dropped
capability through a setuid or file-capability binary.
"""
from __future__ import annotations

import prctl

DEFAULT_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE",
                "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT")


def all_names() -> list[str]:
    return [n.upper() for n in prctl.ALL_CAP_NAMES]


def normalize(name: str) -> str:
    """`net_admin`, `CAP_NET_ADMIN` and `NET_ADMIN` all mean the same capability."""
    n = name.strip().upper()
    return n[4:] if n.startswith("CAP_") else n


def resolve(add: tuple[str, ...] = (), drop: tuple[str, ...] = ()) -> list[str]:
    """The final capability set for --cap-add/--cap-drop ("ALL" works for both)."""
    known = set(all_names())
    for n in (*add, *drop):
        if normalize(n) != "ALL" and normalize(n) not in known:
            from .errors import UsageError
            raise UsageError(f"unknown capability {n!r}")
    caps = set(DEFAULT_CAPS)
    if any(normalize(n) == "ALL" for n in drop):
        caps = set()
    caps -= {normalize(n) for n in drop}
    if any(normalize(n) == "ALL" for n in add):
        caps = set(known)
    caps |= {normalize(n) for n in add if normalize(n) != "ALL"}
    return sorted(caps)


def _cap(name: str) -> int:
    return getattr(prctl, "CAP_" + name)


def drop_bounding(keep: list[str]) -> None:
    """First step, while still root with CAP_SETPCAP: shrink the bounding set."""
    wanted = {_cap(n) for n in keep}
    for cap in prctl.ALL_CAPS:
        if cap not in wanted and prctl.capbset_read(cap):
            prctl.capbset_drop(cap)


def limit(keep: list[str]) -> None:
    """Last step before exec: permitted/effective to `keep`, inheritable empty, no_new_privs."""
    wanted = {_cap(n) for n in keep}
    prctl.cap_inheritable.limit()
    prctl.cap_effective.limit(*wanted)
    prctl.cap_permitted.limit(*wanted)
    prctl.set_no_new_privs(1)
