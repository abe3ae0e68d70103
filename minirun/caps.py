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

import os

import prctl

DEFAULT_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE",
                "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT")


# Every Linux capability name with its number (linux/capability.h). python-prctl names
# only the ones it knew when it was built, and calls the highest one of this kernel
# "last_cap" (here CAP_CHECKPOINT_RESTORE, 40): capabilities go by number.
NUMBERS = {n: i for i, n in enumerate((
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
    "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
    "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
    "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
    "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"))}


def all_names() -> list[str]:
    """Every capability this kernel has (that python-prctl can set: it knows them up to
    the kernel's last one)."""
    have = set(prctl.ALL_CAPS)
    return [n for n, i in NUMBERS.items() if i in have]


def in_bounding_set() -> list[str]:
    """The capabilities this process could give (its bounding set): --privileged's
    "every capability", as Docker computes it; a host that runs minirun without one
    cannot hand it on."""
    return [n for n in all_names() if prctl.capbset_read(_cap(n))]


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
    return NUMBERS[name]


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


# -- the OCI runtime's capability sets (minirun-oci) -----------------------------------

PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE = 47, 2


def _raise(capset, names) -> None:
    if names:
        prctl.set_caps(([_cap(n) for n in names], capset.flag, True))


def apply_sets(sets: dict, uid: int, gid: int, groups, no_new_privs: bool) -> None:
    """The OCI process's user and its five capability sets: bounding first (needs
    CAP_SETPCAP), inheritable while still root, then the user change keeping the permitted
    set (keep_caps), then permitted, effective and ambient; no_new_privs only if asked."""
    drop_bounding(list(sets.get("bounding", ())))
    inh = {_cap(n) for n in sets.get("inheritable", ())}
    prctl.cap_inheritable.limit(*inh)
    _raise(prctl.cap_inheritable, sets.get("inheritable", ()))
    prctl.set_keepcaps(True)
    os.setgroups(list(groups))
    os.setgid(gid)
    os.setuid(uid)
    prctl.set_keepcaps(False)
    # effective must stay within permitted at every step
    prctl.cap_effective.limit(*({_cap(n) for n in sets.get("effective", ())}
                                & {_cap(n) for n in sets.get("permitted", ())}))
    prctl.cap_permitted.limit(*{_cap(n) for n in sets.get("permitted", ())})
    _raise(prctl.cap_effective, sets.get("effective", ()))
    if sets.get("ambient"):
        import ctypes
        from .kernel import _libc
        for n in sets["ambient"]:
            if _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, _cap(n), 0, 0) < 0:
                from .errors import SyscallError
                raise SyscallError("prctl", f"ambient CAP_{n}", ctypes.get_errno())
    if no_new_privs:
        prctl.set_no_new_privs(1)
