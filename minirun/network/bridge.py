"""The bridge driver: a veth "cable" from each container into a Linux bridge "switch".

attach, for container C on network N (bridge B, gateway G):
  1. (first container on N) ip link add B type bridge; ip addr add G/len dev B; up;
     sysctl net.ipv4.ip_forward=1; net.ipv4.conf.B.route_localnet=1;
     the network's firewall rules (masquerade, isolation, forward accepts)
  2. ip netns attach C PID                 -- so `ip netns` lists it
  3. ip link add vethXXXX type veth peer name eth0 netns C; ip link set vethXXXX master B up
  4. inside C: address, eth0 up, lo up, default route via G
  5. C's published ports: one atomic firewall transaction
detach undoes it in reverse, firewall first and the bridge last, and only when
no container is left on the network (netavark's order). Every step is
idempotent, and detach keeps going past failures.

The address and the host ports are reserved in prepare(), before any kernel
object exists, and recorded in the container's record so a crash at any later
point leaves enough to undo everything.
"""
from __future__ import annotations

import os

from .. import faults, fsutil, oplog
from ..errors import Conflict, MinirunError
from ..state import Container, Paths, lookup
from . import netns
from .firewall import NetworkInfo, PortForward, get_firewall
from .networks import Network, NetworkStore
from .plugin import _collect
from .ports import PortMapping, host_port_in_use, pick_free_port
from .reservations import PortReservations

PEER_IFNAME = "eth0"


def veth_name(cid: str) -> str:
    """Host end of the cable: derived from the id, within the 15-character limit."""
    return "veth" + cid[:11]


def set_sysctl(path: str, value: str) -> None:
    full = "/proc/sys/" + path.replace(".", "/")
    try:
        with open(full) as f:
            if f.read().strip() == value:
                return
    except OSError:
        pass
    oplog.record(f"sysctl -w {path}={value}")
    with open(full, "w") as f:
        f.write(value)


def _alive(paths: Paths):
    def is_alive(cid: str) -> bool:
        try:
            c = lookup(paths, cid)
        except MinirunError:
            return False
        return c.status() in ("running", "creating")
    return is_alive


class BridgeDriver:
    name = "bridge"
    new_netns = True

    def __init__(self, paths: Paths, net: Network, firewall: str):
        self.paths, self.net, self.firewall_name = paths, net, firewall
        self.store = NetworkStore(paths)
        self.reservations = PortReservations(paths.root / "ports")

    @classmethod
    def for_network(cls, paths: Paths, network: str, firewall: str) -> "BridgeDriver":
        return cls(paths, NetworkStore(paths).get(network), firewall)

    @classmethod
    def from_record(cls, paths: Paths, rec: dict, firewall: str | None) -> "BridgeDriver":
        net = Network(rec["network"], rec["subnet"], rec["gateway"], rec["bridge"])
        return cls(paths, net, rec.get("firewall") or firewall or "nftables")

    @property
    def ready_marker(self):
        """Says the network's rules are in for the bridge with this ifindex (volatile)."""
        return self.paths.runroot / f"network-{self.net.name}.ready"

    @property
    def info(self) -> NetworkInfo:
        return NetworkInfo(self.net.name, self.net.bridge, self.net.subnet, self.net.gateway)

    def _firewall(self):
        return get_firewall(self.firewall_name, lock_path=self.paths.runroot / "firewall.lock")

    # -- before fork ------------------------------------------------------
    def check_ports(self, mappings: list[PortMapping]) -> None:
        """Refuse host ports in use by a host process or another container, creating nothing."""
        alive = _alive(self.paths)
        for m in mappings:
            if m.host_port is None:
                continue
            owner = self.reservations.owner(m.proto, m.host_port)
            if owner and alive(owner):
                raise Conflict(f"host port {m.host_port}/{m.proto} is already published by "
                               f"container {_name_of(self.paths, owner)}")
            if host_port_in_use(m.host_ip, m.host_port, m.proto):
                raise Conflict(f"host port {m.host_port}/{m.proto} is already in use on "
                               f"{m.host_ip or 'the host'}")

    def prepare(self, c: Container) -> None:
        mappings: list[PortMapping] = [PortMapping(**p) for p in c.data.get("port_specs", [])]
        rec = {"driver": "bridge", "network": self.net.name, "bridge": self.net.bridge,
               "subnet": self.net.subnet, "gateway": self.net.gateway,
               "prefixlen": self.net.prefixlen, "veth": veth_name(c.id), "netns": c.name,
               "firewall": self.firewall_name, "ip": None, "ports": []}
        c.update(network=rec)  # intent first: a crash from here on is reclaimable
        faults.check("prepare.address")
        rec["ip"] = self.store.ipam(self.net).allocate(c.id, c.data.get("requested_ip"))
        c.update(network=rec)
        alive = _alive(self.paths)
        faults.check("prepare.ports")
        for m in mappings:
            port = m.host_port
            if port is None:
                port = pick_free_port(m.host_ip, m.proto, self.reservations.taken())
            self.reservations.reserve(c.id, m.proto, port, alive)
            rec["ports"].append({"proto": m.proto, "host_ip": m.host_ip, "host_port": port,
                                 "container_port": m.container_port})
            c.update(network=rec)

    def join_fd(self, c: Container) -> int | None:
        return None

    def hosts_entries(self, c: Container) -> list[tuple[str, str]]:
        ip = c.data["network"]["ip"]
        names = c.data["hostname"] if c.data["hostname"] == c.name \
            else f"{c.data['hostname']} {c.name}"
        return [(ip, names)]

    # -- after fork -------------------------------------------------------
    def attach(self, c: Container, pid: int) -> None:
        from .netlink import Netlink
        rec = c.data["network"]
        fw = self._firewall()
        nl = Netlink()
        try:
            with self.store.net_lock(self.net):
                faults.check("attach.bridge")
                nl.ensure_bridge(self.net.bridge, self.net.gateway, self.net.prefixlen)
                set_sysctl("net.ipv4.ip_forward", "1")
                # Only on the bridge, never on "all": DNAT from 127.0.0.1 needs it, and
                # the firewall drops 127/8 arriving from anywhere but lo (CVE-2020-8558).
                set_sysctl(f"net.ipv4.conf.{self.net.bridge}.route_localnet", "1")
                faults.check("attach.firewall-network")
                # The network's rules go in with its bridge, not with every container:
                # re-applying them makes nft load a cache that grows with the maps.
                ready = f"{nl.index(self.net.bridge)}"
                if fsutil.read_text(self.ready_marker) != ready:
                    fw.setup_network(self.info)
                    fsutil.atomic_write(self.ready_marker, ready)
            faults.check("attach.netns")
            netns.attach(rec["netns"], pid)
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                faults.check("attach.veth")
                nl.add_veth(rec["veth"], PEER_IFNAME, fd, rec["netns"], self.net.bridge)
                faults.check("attach.address")
                nl.configure_container(fd, rec["netns"], PEER_IFNAME, rec["ip"],
                                       rec["prefixlen"], rec["gateway"])
            finally:
                os.close(fd)
            forwards = self.forwards(rec)
            faults.check("attach.ports")
            fw.add_container(c.id, self.info, forwards)
            udp = [f.host_port for f in forwards if f.proto == "udp"]
            if udp:
                from .netlink import flush_udp_conntrack
                flush_udp_conntrack(udp)
        finally:
            nl.close()

    @staticmethod
    def forwards(rec: dict) -> list[PortForward]:
        return [PortForward(p["proto"], p["host_ip"], p["host_port"], rec["ip"],
                            p["container_port"]) for p in rec.get("ports", [])]

    def detach(self, c: Container) -> list[str]:
        """Undo attach. Every kernel deletion here waits for an RCU grace period (20-50 ms
        on these machines), so the firewall work and the link work run in parallel threads
        (their waits overlap; netlink and nftables take different kernel locks), and the
        last container deletes its veth and the bridge in one batch."""
        from .netlink import Netlink
        rec = c.data.get("network") or {}
        fw = self._firewall()
        ipam = self.store.ipam(self.net)
        veth = rec.get("veth") or veth_name(c.id)

        def remove_rules():
            if rec.get("ip"):
                fw.remove_container(c.id, self.info, self.forwards(rec))
            else:
                fw.purge_container(c.id)

        def with_netlink(step):
            def run():
                nl = Netlink()  # one socket per thread
                try:
                    step(nl)
                finally:
                    nl.close()
            return run

        def release_ports():
            for p in rec.get("ports", []):
                self.reservations.release(c.id, p["proto"], p["host_port"])

        failures = _collect([lambda: netns.detach(rec.get("netns") or c.name)])
        with self.store.net_lock(self.net):
            # The last container on the network takes the bridge and the network's rules
            # with it; holding the lock keeps a new container from attaching meanwhile.
            last = not ipam.others_exist(rec.get("ip"))
            if last:
                def remove_links(nl):
                    ours = nl.is_ours(self.net.bridge, self.net.gateway)
                    nl.delete_links_together([veth] + ([self.net.bridge] if ours else []))

                def remove_all_rules():
                    if rec.get("ip"):
                        fw.remove_last_container(c.id, self.info, self.forwards(rec))
                    else:
                        fw.purge_container(c.id)
                        fw.teardown_network(self.info)

                failures += _parallel([
                    remove_all_rules,
                    with_netlink(remove_links),
                ])
                failures += _collect([lambda: ipam.release(c.id), release_ports,
                                      lambda: self.ready_marker.unlink(missing_ok=True)])
                return failures
        failures += _parallel([remove_rules,
                               with_netlink(lambda nl: nl.delete_links_together([veth]))])
        failures += _collect([lambda: ipam.release(c.id), release_ports])

        # Two containers that left at once may each have seen the other: check again.
        return failures + self.remove_if_unused([fw])

    def remove_if_unused(self, firewalls: list) -> list[str]:
        """With no lease left on the network, its rules (in each of `firewalls`) and its
        bridge go; returns the failures."""
        from .netlink import Netlink
        with self.store.net_lock(self.net):
            if self.store.ipam(self.net).leases():
                return []
            failures = _collect([lambda fw=fw: fw.teardown_network(self.info)
                                 for fw in firewalls])
            nl = Netlink()
            try:
                failures += _collect([
                    lambda: nl.delete_bridge_if_ours(self.net.bridge, self.net.gateway)])
            finally:
                nl.close()
            self.ready_marker.unlink(missing_ok=True)
            return failures


def _parallel(steps) -> list[str]:
    """Run undo steps in threads; like _collect, every failure is kept and reported."""
    import threading
    failures: list[str] = []

    def run(step):
        failures.extend(_collect([step]))

    threads = [threading.Thread(target=run, args=(s,)) for s in steps[1:]]
    for t in threads:
        t.start()
    run(steps[0])
    for t in threads:
        t.join()
    return failures


def _name_of(paths: Paths, cid: str) -> str:
    try:
        return lookup(paths, cid).name
    except MinirunError:
        return cid[:12]
