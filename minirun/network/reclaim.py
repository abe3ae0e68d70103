"""Reclaiming network objects that no record accounts for (`minirun system prune`).

Records are written before each side effect, so the normal path is the
journal-driven teardown (teardown.py). This sweep covers what is left when a
record itself is gone (`rm -f` after a failed undo, a record lost with its
disk): firewall entries tagged with this state root and an unknown container
id, veths on our bridges that carry the MAC we derive from their name's id,
leases and port reservations of containers that are not running, and bridges
of networks with no lease left. Only what is provably this state root's.
"""
from __future__ import annotations

import shutil

from ..state import Paths
from ..failures import Failure, attempt
from .firewall import BACKENDS, get_firewall
from .networks import NetworkStore
from .reservations import PortReservations


def reclaim_orphans(paths: Paths, live_ids: set[str]) -> list[Failure]:
    """Remove every orphaned object; returns what failed (and keeps going)."""
    from .bridge import BridgeDriver, _alive
    from .macs import veth_mac
    from .netlink import Netlink
    is_alive = _alive(paths)
    lock = paths.runroot / "firewall.lock"
    # iptables' rules can only be there (and removed) where its tools are. The iptables
    # backend goes first: the nftables backend's compatibility rules share its
    # MINIRUN-FORWARD chain, and removes what is left of them after it.
    firewalls = [get_firewall(b, lock_path=lock, owner=paths.owner_tag)
                 for b in reversed(BACKENDS)
                 if b == "nftables" or shutil.which("iptables-restore")]
    failures: list[Failure] = []
    for fw in firewalls:
        for cid in fw.container_ids() - live_ids:
            failures += attempt(f"remove {fw.name} rules of", cid[:12],
                                lambda fw=fw, cid=cid: fw.purge_container(cid))
    store = NetworkStore(paths)
    nl = Netlink()
    try:
        for net in store.all():
            driver = BridgeDriver(paths, net, "nftables")
            bridge = nl.link(net.bridge)
            ours = bridge is not None and bridge.mac == driver.bridge_mac
            # not our bridge: nothing plugged into it is ours either
            for port in nl.bridge_ports(net.bridge) if ours else []:
                link = nl.link(port)
                cid = _container_of(paths, port)
                if link is None or cid in live_ids:
                    continue
                if cid is not None and link.mac == veth_mac(cid):
                    failures += attempt("ip link del", port,
                                        lambda port=port, mac=link.mac:
                                        nl.delete_links_together([(port, mac)]))
            store.ipam(net).reclaim(is_alive)
            failures += driver.remove_if_unused(firewalls)
    finally:
        nl.close()
    res = PortReservations(paths.root / "ports")
    res.sweep_unreadable()
    if res.dir.exists():
        for p in res.dir.iterdir():
            proto, _, port = p.name.partition("-")
            if p.name.startswith(".") or not port.isdigit():
                continue
            owner = res.owner(proto, int(port))
            if owner and not is_alive(owner):
                res.release(owner, proto, int(port))
    return failures


def _container_of(paths: Paths, veth: str) -> str | None:
    """The full id of the container a veth name was derived from, if its record still
    names it; else the id found among the leases' owners (a veth's name holds 11 of
    the id's 64 characters)."""
    if not (veth.startswith("veth") and len(veth) == 15):
        return None
    prefix = veth[4:]
    try:
        import os
        for name in os.listdir(paths.containers):
            if name.startswith(prefix):
                return name
        for netdir in paths.networks.glob("*/ipam"):
            for name in os.listdir(netdir):
                if name.startswith("owner-" + prefix):
                    return name[len("owner-"):]
    except OSError:
        pass
    return None
