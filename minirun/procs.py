"""Processes of a container, seen from both sides: `minirun top`.

A process in a PID namespace has one PID per namespace level; the kernel lists
them all in the `NSpid` line of /proc/PID/status (host first, container last).
"""
from __future__ import annotations

import os
import pwd


def _ns_inode(pid: int | str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


def _status(pid: str) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def container_processes(pid1: int) -> list[dict]:
    """Every process in the PID namespace of `pid1`: host PID, container PID, user, command."""
    target = _ns_inode(pid1)
    if target is None:
        return []
    rows = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or _ns_inode(entry) != target:
            continue
        try:
            st = _status(entry)
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        nspid = st.get("NSpid", entry).split()
        uid = int(st.get("Uid", "0").split()[0])
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
        rows.append({"host_pid": int(entry), "container_pid": int(nspid[-1]), "user": user,
                     "state": st.get("State", "?").split()[0],
                     "command": cmd or f"[{st.get('Name', '?')}]"})
    return sorted(rows, key=lambda r: r["container_pid"])
