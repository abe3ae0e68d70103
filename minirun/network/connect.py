"""`network connect` / `network disconnect`: one more network for a running container.

connect NETWORK CONTAINER, each a journal step of layer `conn` (its intent names the
network), recorded in the container's `networks` list:
  conn.lease  an address from NETWORK's IPAM (a lease file naming the container)
  conn.veth   ip link add vxXXXX address M type veth peer name ethN netns C;
              master NETWORK's bridge, up; inside C: the address on ethN (no default
              route: the container's first network keeps it)
  conn.dns    the container's names (and --alias) in NETWORK's aardvark-dns (aardvark.py)

The host end's name and MAC derive from (container id, network): the MAC proves the
link is ours. disconnect, and teardown on every exit path, undo the network's steps
newest first; then disconnect drops them from the journal. The first network (the one
`run` attached) stays: disconnecting it is not supported.
"""
from __future__ import annotations

import hashlib
import os

from .. import faults, fsutil, journal
from ..errors import Conflict, MinirunError, NotFound, TeardownError, UsageError
from ..failures import Failure, attempt
from ..record import Attachment, Container, Step
from ..state import Paths, is_running, locked, lookup, reload, save
from .macs import connect_veth_mac, container_mac


def veth_name(cid: str, network: str) -> str:
    """vx + 13 hex digits of (container, network): within the 15-character limit, and
    unlike the `veth...` names of first networks (reclaim.py derives ids from those)."""
    return "vx" + hashlib.sha256(f"{cid}\0{network}".encode()).hexdigest()[:13]


def _free_ifname(c: Container) -> str:
    used = {"eth0"} | {a.ifname for a in c.networks}
    n = 1
    while f"eth{n}" in used:
        n += 1
    return f"eth{n}"


def _check(paths: Paths, c: Container, network: str, aliases, ip):
    from .networks import DEFAULT_NETWORK, NetworkStore
    from . import dns
    if not is_running(c):
        raise Conflict(f"container {c.name} is not running")
    if c.network is None or c.network.driver != "bridge":
        mode = c.network.driver if c.network else "none"
        raise UsageError(f"container {c.name} has no network namespace of its own to "
                         f"connect (--network {mode})")
    net = NetworkStore(paths).get(network)
    if net.name == DEFAULT_NETWORK:
        raise UsageError("connecting to the default bridge network is not supported: "
                         "connect to a network made by `minirun network create`")
    if net.name == c.network.network or any(a.network == net.name for a in c.networks):
        raise Conflict(f"container {c.name} is already connected to network {net.name}")
    for a in aliases:
        dns.check_name(a, "--alias")
    if ip is not None:
        dns.check_ip(ip, "--ip")
    return net


def connect(paths: Paths, ref: str, network: str, aliases: tuple[str, ...] = (),
            ip: str | None = None) -> Attachment:
    from .bridge import BridgeDriver
    c = lookup(paths, ref)
    net = _check(paths, c, network, aliases, ip)
    with locked(c) as exists:  # teardown (finish) takes this lock: no race with an exit
        c = reload(c) if exists else None
        if c is None or not is_running(c):
            raise Conflict(f"container {ref} is not running")
        net = _check(paths, c, network, aliases, ip)
        driver = BridgeDriver(paths, net, c.network.firewall or "nftables")
        start = len(c.journal)
        try:
            att = _attach(paths, c, driver, aliases, ip)
        except BaseException:
            steps = [s for s in c.journal[start:] if s.kind.startswith("conn.")]
            failures = undo(c, list(reversed(steps)))
            c.journal = c.journal[:start]
            save(c)
            for f in failures:
                import sys
                print(f"minirun: rollback: {f}", file=sys.stderr)
            raise
        c.networks.append(att)
        save(c)
        return att


def _attach(paths: Paths, c: Container, driver, aliases, ip) -> Attachment:
    from .netlink import Netlink
    net = driver.net
    store = driver.store
    with fsutil.locked(store.lock_path):  # `network rm` sees the lease once it is on disk
        driver._check_still_there()
        faults.check("connect.lease")
        with journal.step(c, "conn.lease", network=net.name) as intent:
            intent["ip"] = addr = store.ipam(net).allocate(c.id, ip)
    ifname = _free_ifname(c)
    att = Attachment(driver="bridge", netns=c.network.netns, network=net.name,
                     bridge=net.bridge, subnet=net.subnet, gateway=net.gateway,
                     firewall=driver.firewall_name, veth=veth_name(c.id, net.name), ip=addr,
                     mac=container_mac(addr), ifname=ifname, aliases=tuple(aliases))
    nl = Netlink()
    try:
        with store.net_lock(net):  # a named network keeps its bridge: no step to undo
            driver._ensure_network(nl, driver._firewall())
        fd = os.open(f"/proc/{c.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            from ..procs import proc_start_time
            if proc_start_time(c.pid) != c.pid_start:
                raise Conflict(f"container {c.name} exited meanwhile")
            faults.check("connect.veth")
            with journal.step(c, "conn.veth", network=net.name, name=att.veth,
                              mac=connect_veth_mac(c.id, net.name)):
                nl.add_veth(att.veth, ifname, fd, att.netns, net.bridge,
                            connect_veth_mac(c.id, net.name), att.mac,
                            alias=f"minirun container {c.name} ({net.name})",
                            bridge_mac=driver.bridge_mac)
            nl.configure_container(fd, att.netns, ifname, addr, att.prefixlen, None)
        finally:
            os.close(fd)
    finally:
        nl.close()
    if driver.dns_server:
        from .aardvark import register
        register(paths, c, net.name, net.gateway, addr, tuple(aliases), key="conn.dns")
    return att


def undo(c: Container, steps: list[Step]) -> list[Failure]:
    """Layer `conn` of teardown.py (steps newest first), also disconnect's and a failed
    connect's rollback: names, then the veth (only if it carries our MAC), then the
    lease, network by network."""
    from .aardvark import unregister
    from .networks import NetworkStore
    failures: list[Failure] = []
    for s in steps:
        net_name = s.intent["network"]
        if s.kind == "conn.dns":
            failures += unregister(c.paths, c, net_name, s.intent["gateway"])
        elif s.kind == "conn.veth":
            def delete(s=s):
                from .netlink import Netlink
                nl = Netlink()
                try:
                    foreign = nl.delete_links_together([(s.intent["name"], s.intent["mac"])])
                finally:
                    nl.close()
                if foreign:
                    raise MinirunError(f"{foreign[0]} is not ours: left alone")
            failures += attempt("ip link del", s.intent["name"], delete)
        elif s.kind == "conn.lease":
            def release(net_name=net_name):
                store = NetworkStore(c.paths)
                try:
                    net = store.get(net_name)
                except NotFound:
                    return  # the network, and with it its leases, is gone
                store.ipam(net).release(c.id)
            failures += attempt("release address of", c.name, release)
    return failures


def disconnect(paths: Paths, ref: str, network: str) -> None:
    c = lookup(paths, ref)
    with locked(c) as exists:
        c = reload(c) if exists else None
        if c is None:
            raise NotFound(f"no such container: {ref}")
        att = next((a for a in c.networks if a.network == network), None)
        if att is None:
            if c.network is not None and c.network.network == network:
                raise UsageError(f"network {network} is the first network of container "
                                 f"{c.name}: disconnecting it is not supported")
            raise NotFound(f"container {c.name} is not connected to network {network}")
        steps = [s for s in c.journal
                 if s.kind.startswith("conn.") and s.intent.get("network") == network]
        failures = undo(c, list(reversed(steps)))
        if failures:
            raise TeardownError([str(f) for f in failures])
        c.journal = [s for s in c.journal if s not in steps]
        c.networks = [a for a in c.networks if a.network != network]
        save(c)
