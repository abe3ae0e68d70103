"""The operation log: every host-side change, described as the shell command that does the same.

Mechanism layers (netlink, firewall, mounts, sysctls) call `record()` with the
equivalent command line (`ip link add ...`, `nft -f - <<EOF ...`). Nothing is
printed unless a listener is installed (`minirun --explain`), so the cost when
unused is one list append. The last entries also make error messages precise:
"failed: ip link set veth-x master minirun0: No such device".
"""
from __future__ import annotations

import sys
from typing import Callable, TextIO

_listeners: list[Callable[[str], None]] = []


def record(command: str, why: str | None = None) -> None:
    """Note one host-side change as an equivalent shell command (and why it is made)."""
    if not _listeners:
        return
    if why:
        command = f"{command}  # {why}"
    for listener in _listeners:
        listener(command)


def listen(listener: Callable[[str], None]) -> None:
    _listeners.append(listener)


def explain_to(stream: TextIO = sys.stderr) -> None:
    """Print every recorded change as `+ command`, the way `sh -x` does."""

    def _print(command: str) -> None:
        stream.write("".join(f"+ {line}\n" if i == 0 else f"  {line}\n"
                             for i, line in enumerate(command.splitlines())))
        stream.flush()

    listen(_print)
