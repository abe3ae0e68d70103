"""Reclaiming network objects that no record accounts for (`minirun system prune`).

Records are written before each side effect, so the normal path is the
record-driven teardown in runtime.py. This sweep covers what is left when a
record itself is gone: firewall entries tagged with unknown container ids,
veths named like ours on our bridges, leases and port reservations of
containers that are not running, and bridges of networks with no lease left.
"""
from __future__ import annotations

import re
import shutil
from typing import Callable

from ..state import Paths
from .firewall import BACKENDS, get_firewall
from .networks import NetworkStore
from .reservations import PortReservations

VETH_RE = re.compile(r"^veth[0-9a-f]{11}$")


def reclaim_orphans(paths: Paths, live_ids: set[str],
                    is_alive: Callable[[str], bool]) -> list[str]:
    """Remove every orphaned object; returns what failed (and keeps going)."""
    from .bridge import BridgeDriver
    from .plugin import _collect
    from .netlink import Netlink
    lock = paths.runroot / "firewall.lock"
    # iptables' rules can only be there (and removed) where its tools are
    firewalls = [get_firewall(b, lock_path=lock) for b in BACKENDS
                 if b == "nftables" or shutil.which("iptables-restore")]
    failures: list[str] = []
    for fw in firewalls:
        failures += _collect([lambda fw=fw: [fw.purge_container(cid)
                                             for cid in fw.container_ids() - live_ids]])
    store = NetworkStore(paths)
    nl = Netlink()
    try:
        for net in store.all():
            failures += _collect([lambda port=port: nl.delete_link(port)
                                  for port in nl.bridge_ports(net.bridge)
                                  if VETH_RE.match(port)
                                  and not any(c.startswith(port[4:]) for c in live_ids)])
            store.ipam(net).reclaim(is_alive)
            failures += BridgeDriver(paths, net, "nftables").remove_if_unused(firewalls)
    finally:
        nl.close()
    res = PortReservations(paths.root / "ports")
    if res.dir.exists():
        for p in res.dir.iterdir():
            if "-" in p.name:
                proto, _, port = p.name.partition("-")
                owner = res.owner(proto, int(port))
                if owner and not is_alive(owner):
                    res.release(owner, proto, int(port))
    return failures
