"""The bridge driver: a veth "cable" from each container into a Linux bridge "switch".

prepare, before fork (journaled, no kernel object):
  net.lease   an address from the network's IPAM (a file tagged with the container id)
  net.port    each host port reserved (a file tagged with the container id)
attach, for container C on network N (bridge B, gateway G), each a journal step:
  net.bridge  (ensured by every container; made by `network create` for a user network,
              by the first container for the default one) ip link add B address MAC type bridge; alias;
              ip addr add G/len dev B; up; sysctl net.ipv4.ip_forward=1; the network's
              firewall rules (masquerade, isolation, the 127/8 drop); and only then
              net.ipv4.conf.B.route_localnet=1
  net.netns   ip netns attach C PID                 -- so `ip netns` lists it
  net.veth    ip link add vethX address M mtu 65520 type veth peer name eth0 address M2
              mtu 65520 netns C; master B, up, hairpin; inside C: address, eth0 up, lo up,
              default route with mtu 1500 (the network itself runs at the veths' 65520,
              which the bridge takes too; what leaves it, at Ethernet's 1500: netlink.py)
  net.fw      C's published ports: one atomic firewall transaction

Ownership tokens: the bridge's MAC is derived from (state root, network) and set
in the message that creates it; the veth's host-end MAC from the container id;
firewall entries carry the state root's tag and the container id; leases and
port reservations name the container; the netns name is proven by an xattr and
the namespace's inode. A link that is not provably ours is never given an
address, a port, or deleted.

undo walks back: firewall entries and the veth in parallel threads (their kernel
waits overlap), the name of the namespace, and, for the default network's last
container (a network made by `network create` keeps them until `network rm`),
the bridge and the network's rules in the same batches (netavark's
order: firewall first, bridge last and only when empty); then the reservations.
"""
from __future__ import annotations

import os

from .. import faults, fsutil, journal, oplog
from ..errors import Conflict, MinirunError
from ..record import Attachment, Container, Port, Step
from ..state import Paths, is_running, load, lookup, save
from ..failures import Failure, attempt, in_parallel
from . import netns
from .firewall import NetworkInfo, PortForward, get_firewall
from .macs import bridge_mac, container_mac, veth_mac
from .networks import Network, NetworkStore, _network
from .ports import host_port_in_use, pick_free_port
from .reservations import PortReservations

PEER_IFNAME = "eth0"


def veth_name(cid: str) -> str:
    """Host end of the cable: derived from the id, within the 15-character limit."""
    return "veth" + cid[:11]


def set_sysctl(path: str, value: str, why: str | None = None) -> None:
    full = "/proc/sys/" + path.replace(".", "/")
    try:
        with open(full) as f:
            if f.read().strip() == value:
                return
    except OSError:
        pass
    oplog.record(f"sysctl -w {path}={value}", why=why)
    if oplog.skip():
        return
    with open(full, "w") as f:
        f.write(value)


def _alive(paths: Paths):
    def is_alive(cid: str) -> bool:
        c = load(paths, cid) if len(cid) == 64 else None
        return c is not None and (is_running(c) or c.state in ("creating", "created"))
    return is_alive


def forwards(att: Attachment) -> list[PortForward]:
    return [PortForward(p.proto, p.host_ip, p.host_port, att.ip, p.container_port)
            for p in att.ports]


class BridgeDriver:
    name = "bridge"
    new_netns = True

    def __init__(self, paths: Paths, net: Network, firewall: str):
        self.paths, self.net, self.firewall_name = paths, net, firewall
        self.store = NetworkStore(paths)
        self.reservations = PortReservations(paths.root / "ports")
        self.owner = paths.owner_tag
        self.bridge_mac = bridge_mac(self.owner, net.name)

    @classmethod
    def for_network(cls, paths: Paths, network: str, firewall: str) -> "BridgeDriver":
        return cls(paths, NetworkStore(paths).get(network), firewall)

    @classmethod
    def from_record(cls, paths: Paths, att: Attachment) -> "BridgeDriver":
        net = Network(att.network, att.subnet, att.gateway, att.bridge)
        try:  # the gateway mode is the network's (the attachment predates it)
            data = fsutil.read_json(NetworkStore(paths).record_path(att.network))
            if data and data.get("subnet") == att.subnet and data.get("bridge") == att.bridge:
                net = _network(data)
        except (OSError, ValueError, TypeError):
            pass
        return cls(paths, net, att.firewall or "nftables")

    @property
    def ready_marker(self):
        """Says the network's rules are in for the bridge with this ifindex (volatile), and
        with which firewall backend (heal.py reads it)."""
        return self.paths.runroot / f"network-{self.net.name}.ready"

    @property
    def info(self) -> NetworkInfo:
        return NetworkInfo(self.net.name, self.net.bridge, self.net.subnet, self.net.gateway,
                           self.net.mode)

    @property
    def lazy(self) -> bool:
        """Whether the network's bridge and rules come and go with its containers: only the
        default network's. A network made by `network create` keeps them until `network rm`."""
        from .networks import DEFAULT_NETWORK
        return self.net.name == DEFAULT_NETWORK

    @property
    def dns_server(self) -> str | None:
        """Where the container's names resolve: a named network's gateway, where its
        aardvark-dns listens (aardvark.py); the default network has none, as in Docker."""
        return None if self.lazy else self.net.gateway

    @property
    def alias(self) -> str:
        return f"minirun network {self.net.name} (root {self.paths.root})"

    def _firewall(self, backend: str | None = None):
        return get_firewall(backend or self.firewall_name,
                            lock_path=self.paths.runroot / "firewall.lock", owner=self.owner)

    # -- before anything exists ----------------------------------------------
    def preflight(self, spec, ports: list) -> None:
        """Refuse, creating nothing: a firewall backend without its tools or other than the
        one the network's rules are in, a netns name or a host port that is taken, a link
        named like our bridge that is not ours."""
        self._firewall().check_available()
        active = (fsutil.read_json(self.ready_marker) or {}).get("firewall")
        if active not in (None, self.firewall_name):
            raise Conflict(f"network {self.net.name} has its rules in {active}: run its "
                           f"containers with --firewall {active}")
        if spec.name:
            netns.check_free(spec.name)
        self._check_bridge()
        alive = _alive(self.paths)
        for m in ports:
            if m.host_port is None:
                continue
            owner = self.reservations.owner(m.proto, m.host_port)
            if owner and alive(owner):
                raise Conflict(f"host port {m.host_port}/{m.proto} is already published by "
                               f"container {_name_of(self.paths, owner)}")
            if host_port_in_use(m.host_ip, m.host_port, m.proto):
                raise Conflict(f"host port {m.host_port}/{m.proto} is already in use on "
                               f"{m.host_ip or 'the host'}")

    def _check_bridge(self) -> None:
        from .netlink import Netlink
        nl = Netlink()
        try:
            link = nl.link(self.net.bridge)
        finally:
            nl.close()
        if link is not None and (link.kind != "bridge" or link.mac != self.bridge_mac):
            owner = link.alias if (link.alias or "").startswith("minirun ") else None
            raise Conflict(f"link {self.net.bridge} exists and is not minirun's bridge of "
                           f"network {self.net.name}"
                           + (f": it is {owner}" if owner else f" (a {link.kind or 'link'})"))

    # -- before fork -----------------------------------------------------------
    def prepare(self, c: Container) -> None:
        c.network = Attachment(
            driver="bridge", netns=c.name, network=self.net.name, bridge=self.net.bridge,
            subnet=self.net.subnet, gateway=self.net.gateway, firewall=self.firewall_name,
            veth=veth_name(c.id))
        faults.check("prepare.address")
        faults.point("prepare")
        # Under the lock `network rm` takes: the network still exists (as we read it),
        # and once this step is on disk, `network rm` sees this container and refuses.
        with fsutil.locked(self.store.lock_path):
            self._check_still_there()
            with journal.step(c, "net.lease", network=self.net.name) as intent:
                intent["ip"] = ip = self.store.ipam(self.net).allocate(c.id,
                                                                       c.config.requested_ip)
        c.network = c.network._replace(ip=ip, mac=container_mac(ip))
        alive = _alive(self.paths)
        faults.check("prepare.ports")
        ports = []
        for m in c.config.ports:
            port = m.host_port
            lost: set[int] = set()  # picked, then reserved by another container first
            while True:
                if m.host_port is None:
                    port = pick_free_port(m.host_ip, m.proto,
                                          self.reservations.taken() | lost,
                                          tuple(m.host_range) if m.host_range else None)
                try:
                    with journal.step(c, "net.port", proto=m.proto, port=port):
                        self.reservations.reserve(c.id, m.proto, port, alive)
                    break
                except Conflict:
                    if m.host_port is not None:
                        raise
                    lost.add(port)
            ports.append(Port(m.host_ip, port, m.container_port, m.proto))
        c.network = c.network._replace(ports=tuple(ports))
        save(c)

    def _check_still_there(self) -> None:
        from ..errors import NotFound
        now = fsutil.read_json(self.store.record_path(self.net.name))
        if self.net.name == "bridge" and now is None:
            return  # the default network's record is made on demand
        if not now or (now.get("subnet"), now.get("bridge")) != (self.net.subnet,
                                                                 self.net.bridge):
            raise NotFound(f"network {self.net.name} was removed meanwhile")

    def join_path(self, c: Container) -> str | None:
        return None

    def hosts_entries(self, c: Container) -> list[tuple[str, str]]:
        hostname = c.config.hostname
        names = hostname if hostname == c.name else f"{hostname} {c.name}"
        return [(c.network.ip, names)]

    # -- after fork ----------------------------------------------------------------
    def attach(self, c: Container, pid: int) -> None:
        att = c.network
        self.attach_steps(c, f"/proc/{pid}/ns/net", PEER_IFNAME,
                          f"minirun container {c.name}",
                          name_netns=lambda: netns.attach_step(c, att.netns, pid))
        if self.dns_server:  # journal step dns.entry (layer dns, undone before the veth)
            from .aardvark import register
            register(self.paths, c, self.net.name, self.net.gateway, att.ip, c.config.aliases)

    def attach_steps(self, c: Container, netns_path: str, peer_ifname: str, alias: str,
                     name_netns=None, **veth_intent) -> None:
        """The attach steps into the network namespace at `netns_path`: the network
        (bridge and rules), the namespace's name (`name_netns`, when it is ours to name),
        the veth with `peer_ifname` inside, its address and route, the published ports. The
        CNI plugin (minirun/cni) runs the same steps for a namespace its runtime made."""
        from .netlink import Netlink
        att = c.network
        fw = self._firewall()
        nl = Netlink()
        try:
            faults.check("attach.bridge")
            with journal.step(c, "net.bridge", network=self.net.name, name=self.net.bridge,
                              mac=self.bridge_mac):
                with self.store.net_lock(self.net):
                    self._ensure_network(nl, fw)
            faults.check("attach.netns")
            if name_netns is not None:
                name_netns()
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                faults.check("attach.veth")
                with journal.step(c, "net.veth", name=att.veth, mac=veth_mac(c.id),
                                  **veth_intent):
                    nl.add_veth(att.veth, peer_ifname, fd, att.netns, self.net.bridge,
                                veth_mac(c.id), att.mac, alias=alias,
                                bridge_mac=self.bridge_mac)
                faults.check("attach.address")
                nl.configure_container(fd, att.netns, peer_ifname, att.ip, att.prefixlen,
                                       att.gateway)
            finally:
                os.close(fd)
            fwds = forwards(att)
            faults.check("attach.ports")
            if fwds:
                with journal.step(c, "net.fw"):
                    fw.add_container(c.id, self.info, fwds)
                udp = [f.host_port for f in fwds if f.proto == "udp"]
                if udp:
                    from .netlink import flush_udp_conntrack
                    flush_udp_conntrack(udp)
        finally:
            nl.close()

    def _ensure_network(self, nl, fw) -> None:
        """The bridge, its address, forwarding and the network's rules (under the network's
        lock). The rules go in with the bridge, not with every container: re-applying them
        makes nft load a cache that grows with the maps."""
        nl.ensure_bridge(self.net.bridge, self.net.gateway, self.net.prefixlen,
                         self.bridge_mac, self.alias)
        set_sysctl("net.ipv4.ip_forward", "1",
                   why="let the host route between the bridge and its other interfaces "
                   "(host-wide; left on, as Docker does)")
        faults.check("attach.firewall-network")
        ready = {"bridge_index": nl.index(self.net.bridge), "firewall": self.firewall_name}
        if fsutil.read_json(self.ready_marker) != ready:
            fw.setup_network(self.info)
            fsutil.write_json(self.ready_marker, ready)
        self._route_localnet_on()

    # -- `network create` / `network rm` ------------------------------------------
    def create_network(self) -> None:
        """Make the bridge (fixed MAC, alias), its address, up, ip_forward, the network's
        rules, and only then route_localnet: `network create`, as Docker does. Idempotent
        (every piece is an ensure), so a retry after a kill finishes the job."""
        from .netlink import Netlink
        self._firewall().check_available()
        self._check_bridge()
        fw = self._firewall()
        with self.store.net_lock(self.net):
            nl = Netlink()
            try:
                faults.check("network.create")
                self._ensure_network(nl, fw)
            finally:
                nl.close()

    def remove_network(self) -> list[Failure]:
        """`network rm`: the network's rules (in each backend they may be in: the marker's,
        and the other where its tools exist), the bridge if it carries the network's MAC,
        the marker. Returns the failures."""
        import shutil
        from .firewall import BACKENDS
        marker = fsutil.read_json(self.ready_marker) or {}
        backends = [b for b in BACKENDS
                    if b == marker.get("firewall") or b == "nftables"
                    or shutil.which("iptables-restore")]
        with self.store.net_lock(self.net):
            # iptables first: the nftables backend's compatibility rules share its chain
            failures = self._remove_rules_and_bridge(
                [self._firewall(b) for b in sorted(backends, key=lambda b: b != "iptables")])
            if not failures:
                self.ready_marker.unlink(missing_ok=True)
        return failures

    def _remove_rules_and_bridge(self, firewalls: list) -> list[Failure]:
        """The network's rules in each of `firewalls`, then its bridge if it carries the
        network's MAC (the caller holds the network's lock)."""
        from .netlink import Netlink
        failures: list[Failure] = []
        for fw in firewalls:
            failures += attempt(f"remove {fw.name} rules of network", self.net.name,
                                lambda fw=fw: fw.teardown_network(self.info))
        nl = Netlink()
        try:
            failures += attempt("ip link del", self.net.bridge,
                                lambda: nl.delete_bridge_if_ours(self.net.bridge,
                                                                 self.bridge_mac))
        finally:
            nl.close()
        return failures

    def _route_localnet_on(self) -> None:
        # Only on the bridge, never on "all", and only once the firewall drops 127/8
        # arriving from anywhere but lo (CVE-2020-8558): DNAT from 127.0.0.1 needs it.
        set_sysctl(f"net.ipv4.conf.{self.net.bridge}.route_localnet", "1",
                   why="let DNAT send traffic for 127.0.0.1 out to the bridge (published "
                   "ports answer on localhost); only now that the rules drop 127/8 from "
                   "anywhere but lo")

    # -- self-healing (heal.py) ---------------------------------------------------
    def firewall_intact(self) -> bool:
        try:
            return self._firewall().intact([self.info])
        except MinirunError:
            return False

    def restore_firewall(self, running: list[Container]) -> bool:
        """Put the network's rules and its running containers' ports back; True if the
        network is (still) ours to restore. route_localnet is off meanwhile."""
        from .netlink import Netlink
        fw = self._firewall()
        with self.store.net_lock(self.net):
            nl = Netlink()
            try:
                link = nl.link(self.net.bridge)
            finally:
                nl.close()
            if link is None or link.mac != self.bridge_mac:
                self.ready_marker.unlink(missing_ok=True)  # stale: no bridge of ours
                return False
            set_sysctl(f"net.ipv4.conf.{self.net.bridge}.route_localnet", "0",
                       why="no localhost DNAT while the 127/8 drop rule is missing")
            fw.restore(self.info, {c.id: forwards(c.network) for c in running if c.network})
            self._route_localnet_on()
        return True

    # -- undo ----------------------------------------------------------------------
    def undo(self, c: Container, steps: list[Step]) -> list[Failure]:
        """Undo what the journal says (steps newest first). Every kernel deletion waits for
        an RCU grace period (20-50 ms here), so the firewall work and the link work run in
        parallel threads, and the network's last container deletes its veth and the bridge
        in one batch and its ports with the network's rules in one transaction."""
        from .netlink import Netlink
        kinds = {s.kind for s in steps}
        att = c.network or Attachment(driver="bridge", veth=veth_name(c.id))
        fw = self._firewall()
        ipam = self.store.ipam(self.net)
        veth = (att.veth or veth_name(c.id), veth_mac(c.id))
        fwds = forwards(att) if att.ip else []
        failures: list[Failure] = []

        def links(names):
            def run():
                nl = Netlink()  # one socket per thread
                try:
                    nl.delete_links_together(names)  # only those carrying our MAC
                finally:
                    nl.close()
            return lambda: attempt("ip link del", ", ".join(n for n, _ in names), run)

        def rules(last: bool):
            def run():
                if last and fwds:
                    fw.remove_last_container(c.id, self.info, fwds)
                elif last:
                    fw.purge_container(c.id)
                    fw.teardown_network(self.info)
                elif fwds:
                    fw.remove_container(c.id, self.info, fwds)
                else:
                    fw.purge_container(c.id)
            return lambda: attempt("remove firewall rules of", c.name, run)

        def undo_ours(last: bool) -> list[Failure]:
            from ..faults import phase
            veths = [veth] if "net.veth" in kinds else []
            jobs = []
            if "net.fw" in kinds or last:
                jobs.append(rules(last))
            if veths or last:
                jobs.append(links(veths + ([(self.net.bridge, self.bridge_mac)] if last else [])))
            phase("  net undo: rules+links start")
            out = in_parallel(jobs)
            phase("  net undo: rules+links done")
            # The name of the namespace goes after the veth: deleted in this order, the
            # commands --explain prints replay without an error (the veth would otherwise
            # vanish with the namespace first).
            out += netns.undo_steps(c, steps)
            out += self._release(c, steps)
            return out

        with self.store.net_lock(self.net):
            # The last container on the network takes the bridge and the network's rules
            # with it; holding the lock keeps a new container from attaching meanwhile.
            # (a network made by `network create` keeps its bridge until `network rm`)
            last = self.lazy and "net.bridge" in kinds and not ipam.others_exist(att.ip)
            if last:
                failures += undo_ours(True)
                self.ready_marker.unlink(missing_ok=True)
                return failures
        # Not the last: our own veth, rules, name and leases need no network lock, so the
        # teardowns of many containers (rm -f of many) overlap their kernel waits, and
        # starts go on meanwhile.
        failures += undo_ours(False)
        # Two containers that left at once may each have seen the other: check again.
        return failures + (self.remove_if_unused([fw])
                           if "net.bridge" in kinds and self.lazy else [])

    def _release(self, c: Container, steps: list[Step]) -> list[Failure]:
        failures = []
        for s in steps:
            if s.kind == "net.port":
                failures += attempt("release host port", f"{s.intent['port']}/{s.intent['proto']}",
                                    lambda s=s: self.reservations.release(
                                        c.id, s.intent["proto"], s.intent["port"]))
        if any(s.kind == "net.lease" for s in steps):
            failures += attempt("release address of", c.name,
                                lambda: self.store.ipam(self.net).release(c.id))
        return failures

    def remove_if_unused(self, firewalls: list) -> list[Failure]:
        """With no lease left on the network, its rules (in each of `firewalls`) and its
        bridge go (only if the bridge is ours); returns the failures. Only the default
        network's: a network made by `network create` keeps them until `network rm`."""
        if not self.lazy:
            return []
        with self.store.net_lock(self.net):
            if self.store.ipam(self.net).in_use():
                return []
            failures = self._remove_rules_and_bridge(firewalls)
            self.ready_marker.unlink(missing_ok=True)
            return failures


def _name_of(paths: Paths, cid: str) -> str:
    try:
        return lookup(paths, cid).name
    except MinirunError:
        return cid[:12]
