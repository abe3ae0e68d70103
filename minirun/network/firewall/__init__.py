"""The firewall layer: NAT, publishing, isolation. nftables by default, iptables as an option.

Each backend renders its rules as text with pure functions and applies them
with a runner; see the docstrings of `nftables` and `iptables` for the exact
rules, the FORWARD-policy-drop handling and the administrator's hook
(nft chain `user` in table `ip minirun`; iptables chain `MINIRUN-USER`).

Ownership: several state roots may share the host's table and chains. Each
passes its own `owner` tag ([a-z0-9]{1,16}, derived from the state root), every
element and rule it adds carries it, and it lists, tears down and purges only
what carries it; the shared table/chains go with the last element of any owner.

Callers: `check_available()` before creating anything; `intact(nets)` at the
start of a command while networks are active, and `restore(net, containers)`
for each network when it says False (someone flushed the firewall). Turn
`route_localnet` on for a bridge only after setup_network/restore returned:
the 127.0.0.0/8 drop that makes it safe is part of their base rules.
"""
from __future__ import annotations

from pathlib import Path

from minirun.errors import UsageError
from minirun.network.firewall.base import (DEFAULT_OWNER, Firewall, NetworkInfo, PortForward,
                                           Runner, SystemRunner, check_owner)

BACKENDS = ("nftables", "iptables")

__all__ = ["BACKENDS", "Firewall", "NetworkInfo", "PortForward", "Runner", "SystemRunner",
           "get_firewall"]


def get_firewall(name: str = "nftables", runner: Runner | None = None,
                 lock_path: Path | str | None = None, owner: str = DEFAULT_OWNER) -> Firewall:
    """The backend called `name`, tagging what it adds with `owner`; `runner` defaults
    to the real one (tests pass a fake)."""
    check_owner(owner)
    if name == "nftables":
        from minirun.network.firewall.nftables import NftablesFirewall
        return NftablesFirewall(runner or SystemRunner(), lock_path, owner)
    if name == "iptables":
        from minirun.network.firewall.iptables import IptablesFirewall
        return IptablesFirewall(runner or SystemRunner(use_library="lazy"), lock_path, owner)
    raise UsageError(f"unknown firewall backend {name!r} (choose from {', '.join(BACKENDS)})")
