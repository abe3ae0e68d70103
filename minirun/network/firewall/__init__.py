"""The firewall layer: NAT, publishing, isolation. nftables by default, iptables as an option.

Each backend renders its rules as text with pure functions and applies them
with a runner; see the docstrings of `nftables` and `iptables` for the exact
rules, the FORWARD-policy-drop handling and the administrator's hook
(nft chain `user` in table `ip minirun`; iptables chain `MINIRUN-USER`).
"""
from __future__ import annotations

from pathlib import Path

from minirun.errors import UsageError
from minirun.network.firewall.base import (Firewall, NetworkInfo, PortForward, Runner,
                                           SystemRunner)

BACKENDS = ("nftables", "iptables")

__all__ = ["BACKENDS", "Firewall", "NetworkInfo", "PortForward", "Runner", "SystemRunner",
           "get_firewall"]


def get_firewall(name: str = "nftables", runner: Runner | None = None,
                 lock_path: Path | str | None = None) -> Firewall:
    """The backend called `name`; `runner` defaults to the real one (tests pass a fake)."""
    if name == "nftables":
        from minirun.network.firewall.nftables import NftablesFirewall
        return NftablesFirewall(runner or SystemRunner(), lock_path)
    if name == "iptables":
        from minirun.network.firewall.iptables import IptablesFirewall
        return IptablesFirewall(runner or SystemRunner(use_library=False), lock_path)
    raise UsageError(f"unknown firewall backend {name!r} (choose from {', '.join(BACKENDS)})")
