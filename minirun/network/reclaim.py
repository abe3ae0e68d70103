"""Reclaiming network objects that no record accounts for (`minirun system prune`).

Records are written before each side effect, so the normal path is the
record-driven teardown in runtime.py. This sweep covers what is left when a
record itself is gone: firewall entries tagged with unknown container ids,
veths named like ours on our bridges, leases and port reservations of
containers that are not running, and bridges of networks with no lease left.
"""
from __future__ import annotations

import re
from typing import Callable

from ..state import Paths
from .firewall import BACKENDS, NetworkInfo, get_firewall
from .networks import NetworkStore
from .reservations import PortReservations

VETH_RE = re.compile(r"^veth[0-9a-f]{11}$")


def reclaim_orphans(paths: Paths, live_ids: set[str],
                    is_alive: Callable[[str], bool]) -> list[str]:
    """Remove every orphaned object; returns what failed (and keeps going)."""
    from .netlink import Netlink
    failures: list[str] = []
    store = NetworkStore(paths)
    nets = store.all()
    lock = paths.runroot / "firewall.lock"
    nl = Netlink()
    try:
        for backend in BACKENDS:
            try:
                fw = get_firewall(backend, lock_path=lock)
                for cid in fw.container_ids() - live_ids:
                    fw.purge_container(cid)
            except Exception as e:  # noqa: BLE001 - one backend may be absent
                if backend == "nftables":
                    failures.append(f"{backend}: {e}")
        for net in nets:
            for port in nl.bridge_ports(net.bridge):
                if VETH_RE.match(port) and not any(c.startswith(port[4:]) for c in live_ids):
                    try:
                        nl.delete_link(port)
                    except Exception as e:  # noqa: BLE001
                        failures.append(str(e))
            ipam = store.ipam(net)
            ipam.reclaim(is_alive)
            with store.net_lock(net):
                if not ipam.leases() and nl.index(net.bridge) is not None:
                    info = NetworkInfo(net.name, net.bridge, net.subnet, net.gateway)
                    for backend in BACKENDS:
                        try:
                            get_firewall(backend, lock_path=lock).teardown_network(info)
                        except Exception as e:  # noqa: BLE001
                            if backend == "nftables":
                                failures.append(f"{backend}: {e}")
                    nl.delete_bridge_if_ours(net.bridge, net.gateway)
                    (paths.runroot / f"network-{net.name}.ready").unlink(missing_ok=True)
        res = PortReservations(paths.root / "ports")
        if res.dir.exists():
            for p in res.dir.iterdir():
                if "-" in p.name:
                    proto, _, port = p.name.partition("-")
                    owner = res.owner(proto, int(port))
                    if owner and not is_alive(owner):
                        res.release(owner, proto, int(port))
    finally:
        nl.close()
    return failures
