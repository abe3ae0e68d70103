"""Self-healing firewall: notice that minirun's rules were flushed, and restore them.

Host firewalls get reloaded: `systemctl restart nftables` runs Debian's
/etc/nftables.conf, whose first line is `flush ruleset`; `iptables -F` is a
classic. Afterwards published ports and egress die silently, and worse, a
bridge keeps `route_localnet=1` while the 127.0.0.0/8 drop rule is gone, so
containers could reach services bound to the host's loopback (the
CVE-2020-8558 class).

Every minirun command calls `check()` first. For each network of this state
root that is active (its bridge and rules were set up: a marker in the run
root says with which firewall backend), it asks the backend whether its rules
are intact -- a small listing, not the port maps. Where they are not, it
turns `route_localnet` off on the bridge before anything else, restores the
network's rules and every running container's published ports from the
records, turns `route_localnet` back on, and says so on stderr in one line.
`minirun network reload` does the same for every active network on demand,
as `podman network reload` does.

Active networks are those with a marker: the default network while it has a
container, and every network made by `network create` from its creation to its
`network rm` -- also while no container is attached, so an idle network's rules
come back after a flush too. After a reboot (the run root is emptied) the
bridge of an idle network returns with its first container, or at once with
`minirun network reload` (`ensure_idle`).
"""
from __future__ import annotations

import sys

from . import fsutil
from .errors import MinirunError
from .state import Paths, all_containers, is_running

MARKER_PREFIX = "network-"
MARKER_SUFFIX = ".ready"


def active_networks(paths: Paths) -> list[tuple[str, str]]:
    """(network name, firewall backend) of every network whose rules are set up."""
    import os
    try:
        names = os.listdir(paths.runroot)
    except FileNotFoundError:
        return []
    out = []
    for n in names:
        if n.startswith(MARKER_PREFIX) and n.endswith(MARKER_SUFFIX):
            data = fsutil.read_json(paths.runroot / n)
            if isinstance(data, dict):
                out.append((n[len(MARKER_PREFIX):-len(MARKER_SUFFIX)], data.get("firewall")))
    return out


def check(paths: Paths, force: bool = False, quiet: bool = False) -> list[str]:
    """Restore the rules of every active network whose rules are gone (all of them with
    `force`). Returns the names of the networks restored."""
    active = active_networks(paths)
    if not active:
        return []
    from .network.bridge import BridgeDriver
    from .network.networks import NetworkStore
    store = NetworkStore(paths)
    restored, counted = [], 0
    for name, backend in sorted(active):
        try:
            net = store.get(name)
        except Exception:  # noqa: BLE001 - a network removed meanwhile
            continue
        driver = BridgeDriver(paths, net, backend or "nftables")
        if not force and driver.firewall_intact():
            continue
        running = [c for c in all_containers(paths)
                   if c.network and c.network.network == name and is_running(c)]
        try:
            if driver.restore_firewall(running):
                restored.append(name)
                counted += len(running)
        except MinirunError as e:  # never the reason another command fails
            print(f"minirun: cannot restore the firewall rules of network {name}: {e}",
                  file=sys.stderr)
    if restored and not quiet:
        print(f"minirun: the firewall had lost minirun's rules for network "
              f"{', '.join(restored)}: restored them, with the published ports of "
              f"{counted} running container(s)", file=sys.stderr)
    return restored


def ensure_idle(paths: Paths, firewall: str) -> list[str]:
    """Make the bridge and rules of every network made by `network create` that has none
    (after a reboot); returns their names."""
    from .network.bridge import BridgeDriver
    from .network.networks import DEFAULT_NETWORK, NetworkStore
    store = NetworkStore(paths)
    active = {name for name, _ in active_networks(paths)}
    made = []
    for net in store.all():
        if net.name == DEFAULT_NETWORK or net.name in active \
                or store.creating_path(net.name).exists():
            continue
        try:
            BridgeDriver(paths, net, firewall).create_network()
            made.append(net.name)
        except MinirunError as e:
            print(f"minirun: cannot set up network {net.name}: {e}", file=sys.stderr)
    return made
