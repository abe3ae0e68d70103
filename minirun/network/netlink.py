"""Netlink: the one module that changes links, addresses and routes, and the only one
that imports pyroute2.

Links, addresses and routes go through rtnl.py, a small rtnetlink client of
our own: pyroute2's import alone (95-200 ms) is more than a container's whole
start-up budget. pyroute2 is used where its encoders are worth their cost:
conntrack (nfnetlink), only when a UDP port is published.

Every change is also recorded in the operation log as the `ip` command that
does the same, so a learner can replay it by hand. To talk to a container's
namespace without forking, a netlink socket is opened *inside* it (setns,
socket, setns back): a socket stays bound to the namespace it was born in.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shlex
import time

from .. import kernel as k
from .. import oplog
from ..errors import Conflict, SyscallError
from .macs import normalize
from .rtnl import LinkInfo, RtNetlink, alias_bytes

__all__ = ["LinkInfo", "Netlink", "flush_udp_conntrack", "LOCAL_MTU", "EGRESS_MTU"]

# The MTUs of a container's network (issue #12). The veth pair (both ends) gets
# LOCAL_MTU, near the 65535 a veth allows, like loopback's 65536, and the bridge
# follows: a bridge takes its ports' smallest MTU. Host <-> container (a published
# port on 127.0.0.1 included) and container <-> container then move ~64 KB TCP
# segments instead of 1448-byte ones (fewer ACKs, a bigger window per segment):
# measured 0.65x -> ~1.0x loopback throughput. What leaves through the gateway keeps
# the 1500 of Ethernet, as before, from the `mtu` of the container's default route:
# the MSS it advertises to, and the datagrams it sends to, anything off the
# network are those of a 1500-byte link. Every port of a bridge must have the same
# MTU (a veth drops a frame bigger than its MTU without an ICMP), so every veth minirun
# plugs in gets LOCAL_MTU.
LOCAL_MTU = 65520
EGRESS_MTU = 1500


def _fail(cmd: str, e: OSError) -> SyscallError:
    return SyscallError(cmd, None, e.errno or errno.EIO)


def _do(cmd: str, step, ok_errnos: tuple[int, ...] = (), why: str | None = None) -> None:
    """Record `cmd` in the operation log, run the netlink step, name `cmd` if it fails
    (a plan, --explain=only, records it only)."""
    oplog.record(cmd, why)
    if oplog.skip():
        return
    try:
        step()
    except OSError as e:
        if e.errno not in ok_errnos:
            raise _fail(cmd, e) from None


class _Spawned:
    """A command started by `_spawn_quiet`: `poll()` as subprocess.Popen's."""

    def __init__(self, pid: int):
        self.pid, self.returncode = pid, None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -1
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def _spawn_quiet(argv: list[str]) -> _Spawned | None:
    """Start a command we need not wait for (stdio on /dev/null, a session of its own), or
    None if it cannot start. posix_spawn, not subprocess: importing subprocess and shutil
    costs ~7 ms, in the middle of a teardown the user waits for."""
    exe = next((p for p in (f"{d}/{argv[0]}" for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin"))
                if os.access(p, os.X_OK)), None)
    if exe is None:
        return None
    devnull = [(os.POSIX_SPAWN_OPEN, fd, "/dev/null", os.O_RDWR, 0) for fd in (0, 1, 2)]
    try:
        return _Spawned(os.posix_spawn(exe, [exe, *argv[1:]], os.environ,
                                       file_actions=devnull, setsid=True))
    except OSError:
        return None


def _alias_arg(alias: str) -> str:
    """The alias as `ip` takes it, cut as the kernel will store it, quoted for a shell."""
    return shlex.quote(alias_bytes(alias).decode())


def _describe(link: LinkInfo) -> str:
    """What a link that is not ours is, for a one-line error: its kind, and the owner
    its alias names if it has one."""
    what = f"a {link.kind}" if link.kind else "a device"
    if link.alias:
        what += f" labelled {link.alias!r}"
    return what


def _ipv6_off(ifname: str, netns_fd: int | None = None) -> None:
    """`sysctl -w net.ipv6.conf.IF.disable_ipv6=1` (in the namespace of `netns_fd` if
    given), before the link goes up. minirun's networks are IPv4 only; left on, each
    end of each cable would send IPv6 multicast (DAD, MLD reports, router
    solicitations retried for ever) that the bridge floods to every other port: at
    1,000 containers a start cost ~10,000 deliveries into other namespaces, and the
    retries alone kept a share of a CPU busy. Docker does the same for IPv4-only
    networks. /proc/sys/net is the opener's namespace's, hence the setns around the
    open. No IPv6 in the kernel (ipv6.disable=1): nothing to do."""
    path = f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"
    try:
        if netns_fd is None:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        else:
            with _entered(netns_fd):
                fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        os.write(fd, b"1")
    finally:
        os.close(fd)


@contextlib.contextmanager
def _entered(netns_fd: int):
    """This thread inside another network namespace (an open ns fd), and back after: what
    is opened meanwhile (a netlink socket, a /proc/sys/net file) stays in that one."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        k.kernel.setns(netns_fd, k.CLONE_NEWNET, "container network namespace")
        try:
            yield
        finally:
            k.kernel.setns(own, k.CLONE_NEWNET, "host network namespace")
    finally:
        os.close(own)


def _in_netns(netns_fd: int) -> RtNetlink:
    """A netlink socket inside another network namespace (given as an open ns fd)."""
    with _entered(netns_fd):
        return RtNetlink()


class Netlink:
    def __init__(self) -> None:
        self._nl: RtNetlink | None = None

    @property
    def nl(self) -> RtNetlink:
        if self._nl is None:
            self._nl = RtNetlink()
        return self._nl

    def close(self) -> None:
        if self._nl is not None:
            self._nl.close()
            self._nl = None

    def index(self, ifname: str) -> int | None:
        return self.nl.link_index(ifname)

    def link(self, name: str) -> LinkInfo | None:
        """The link called `name`: index, name, kind, mac, alias, master (and flags)."""
        return self.nl.link(name)

    def ensure_bridge(self, name: str, address: str, prefixlen: int, mac: str,
                      alias: str) -> bool:
        """Make sure bridge `name` (the "virtual switch") is ours, with the gateway address,
        up; True if it was created now.

        Ours means: a bridge whose MAC is `mac`, set by the message that created it
        (the kernel ignores an alias there, but applies the MAC). A link of that name
        that is anything else -- an administrator's bridge or veth, another state
        root's or another network's bridge -- raises Conflict and is left untouched:
        no address added, no port plugged in.
        """
        mac = normalize(mac)
        alias = alias_bytes(alias).decode()  # as the kernel keeps it (255 bytes at most)
        created = False
        link = self.link(name)
        if link is None:
            cmd = f"ip link add {name} address {mac} type bridge"
            oplog.record(cmd, why="the \"virtual switch\": one bridge per network, made once "
                         "for the network; its MAC, derived from the network, proves it is "
                         "minirun's")
            if oplog.skip():  # a plan: say what would follow on a new bridge
                _do(f"ip link set {name} alias {_alias_arg(alias)}", None,
                    why="a label for people: whose bridge this is")
                _do(f"ip addr add {address}/{prefixlen} dev {name}", None,
                    why="the gateway: the bridge's own address on the network")
                _do(f"sysctl -w net.ipv6.conf.{name}.disable_ipv6=1", None,
                    why="the network is IPv4 only: the switch itself sends no IPv6 either")
                _do(f"ip link set {name} up", None)
                return True
            try:
                self.nl.add_bridge(name, mac)
                created = True
            except OSError as e:
                if e.errno != errno.EEXIST:  # EEXIST: someone made one just now; judge it
                    raise _fail(cmd, e) from None
            link = self.link(name)
            if link is None:
                raise SyscallError(cmd, None, errno.ENODEV, "the new bridge vanished")
        if link.kind != "bridge" or link.mac != mac:
            if link.alias == alias:
                raise Conflict(f"link {name} exists with this network's label but not its "
                               f"MAC ({link.mac}, not {mac}): it is not provably minirun's")
            mine = (link.alias or "").startswith("minirun ")
            raise Conflict(f"link {name} exists and is not "
                           f"{'this network' if mine else 'minirun'}'s ({_describe(link)})")
        idx = link.index
        if link.alias != alias:
            _do(f"ip link set {name} alias {_alias_arg(alias)}",
                lambda: self.nl.set_link(idx, alias=alias),
                why="a label for people: whose bridge this is")
        if address not in self.nl.addresses(idx):
            _do(f"ip addr add {address}/{prefixlen} dev {name}",
                lambda: self.nl.add_address(idx, address, prefixlen), (errno.EEXIST,),
                why="the gateway: the bridge's own address on the network")
        if created:
            _do(f"sysctl -w net.ipv6.conf.{name}.disable_ipv6=1", lambda: _ipv6_off(name),
                why="the network is IPv4 only: the switch itself sends no IPv6 either")
        if not link.up or created:
            _do(f"ip link set {name} up", lambda: self.nl.set_link(idx, up=True))
        return created

    def delete_links_together(self, links: list[tuple[str, str]]) -> list[str]:
        """Delete the links of `links` -- (name, expected MAC) pairs -- that are provably
        ours, in one kernel batch, and return as soon as they are gone.

        A link is ours only if its MAC is the expected one (set when we created it);
        an absent link is skipped silently. Returns the names of the links that exist
        but are NOT ours: they are left untouched, for the caller to report (it is
        not an error: deleting them would be).

        Each deletion waits for RCU grace periods (20-50 ms here), a batch for one
        set of them: the links are moved into a fresh link group and the group is
        deleted (`ip link del group N`). The kernel unregisters the links (names
        free, nothing listed) about halfway through that wait and spends the rest
        releasing them; so the deletion is sent by an `ip` process of its own and
        we return once the links are unregistered, instead of waiting for the
        release. If that does not happen in time, we delete them ourselves and
        report what fails.
        """
        found: list[tuple[str, int]] = []
        foreign: list[str] = []
        for name, mac in links:
            link = self.link(name)
            if link is None:
                continue
            if link.mac is not None and link.mac == normalize(mac):
                found.append((name, link.index))
            else:
                foreign.append(name)
        if not found:
            return foreign
        used = self.nl.groups_in_use()
        # 2^30..2^31-1: clear of the groups people number by hand, and within what
        # `ip` accepts (it parses a signed 32-bit number)
        group = (int.from_bytes(os.urandom(4), "little") & 0x3FFFFFFF) | 0x40000000
        while group in used:
            group = 0x40000000 | ((group + 1) & 0x3FFFFFFF)
        for n, i in found:
            _do(f"ip link set {n} group {group}", lambda: self.nl.set_group(i, group),
                (errno.ENODEV,), why=f"gather {n} into a link group of its own, to delete "
                "the links in one go (one kernel wait instead of one each)")
        cmd = f"ip link del group {group}"
        oplog.record(cmd, why="delete the links (a veth takes its peer in the container "
                     "with it)")
        if oplog.skip():
            return foreign
        proc = _spawn_quiet(cmd.split())
        deadline = time.monotonic() + 5
        while proc is not None and any(self.index(n) is not None for n, _ in found):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc = None  # it failed or hangs: delete them ourselves, with errors
            else:
                time.sleep(0.0005)
        if proc is None:
            try:
                self.nl.del_group(group)
            except OSError as e:
                if e.errno != errno.ENODEV:
                    raise _fail(cmd, e) from None
        return foreign

    def delete_bridge_if_ours(self, name: str, mac: str) -> bool:
        """`ip link del NAME` if it is a bridge with MAC `mac` (ours); True if deleted.
        False if it is absent or not ours -- then nothing was touched."""
        link = self.link(name)
        if link is None or link.kind != "bridge" or link.mac != normalize(mac):
            return False
        _do(f"ip link del {name}", lambda: self.nl.del_link(link.index),
            (errno.ENODEV, errno.ENOENT), why="no container is left on the network: "
            "the switch goes")
        return True

    def bridge_ports(self, bridge: str) -> list[str]:
        idx = self.index(bridge)
        if idx is None:
            return []
        return [link.name for link in self.nl.links() if link.master == idx]

    def add_veth(self, host_ifname: str, peer_ifname: str, netns_fd: int, netns_name: str,
                 bridge: str, host_mac: str, peer_mac: str, alias: str | None = None,
                 bridge_mac: str | None = None, mtu: int = LOCAL_MTU) -> int:
        """The "virtual cable": one end in the container's namespace (so the kernel removes
        the pair if that namespace dies), the other plugged into the bridge; returns the
        host end's ifindex.

        Both ends get their MAC in the creating message: `host_mac` is the proof that the
        host end is ours, `peer_mac` the container's own. With `bridge_mac`, the bridge
        must carry it (be ours) or nothing is plugged into it (Conflict)."""
        host_mac, peer_mac = normalize(host_mac), normalize(peer_mac)
        br = self.link(bridge)
        if br is None and oplog.skip():  # a plan: the bridge would have been made before
            br = LinkInfo(0, bridge, "bridge", normalize(bridge_mac) if bridge_mac else None,
                          None, 0)
        if br is None or (bridge_mac is not None
                          and (br.kind != "bridge" or br.mac != normalize(bridge_mac))):
            what = "is gone" if br is None else f"is not minirun's ({_describe(br)})"
            raise Conflict(f"cannot plug {host_ifname} into {bridge}: the bridge {what}")
        _do(f"ip link add {host_ifname} address {host_mac} mtu {mtu} type veth "
            f"peer name {peer_ifname} address {peer_mac} mtu {mtu} netns {netns_name}",
            lambda: self.nl.add_veth(host_ifname, peer_ifname, netns_fd, host_mac, peer_mac,
                                     mtu),
            why=f"the \"virtual cable\" between the container and the switch: {host_ifname} "
            f"stays on the host, {peer_ifname} goes into the container's namespace; the MACs, "
            "derived from the container, prove the cable is minirun's; a loopback-sized "
            "MTU (the bridge takes its ports' smallest) for fast host <-> container traffic")
        idx = None if oplog.skip() else self.index(host_ifname)
        _do(f"sysctl -w net.ipv6.conf.{host_ifname}.disable_ipv6=1",
            lambda: _ipv6_off(host_ifname),
            why="the network is IPv4 only: no IPv6 chatter (DAD, MLD, router "
            "solicitations) for the bridge to flood to every other container")
        # by index: the very bridge judged above, even if its name changed hands since
        label = f" alias {_alias_arg(alias)}" if alias is not None else ""
        _do(f"ip link set {host_ifname} master {bridge} up{label}",
            lambda: self.nl.set_link(idx, up=True, master=br.index, alias=alias),
            why="plug the host end into the switch, switch it on, label it")
        # Hairpin: a container reaching its own published port has its DNATed packet
        # bridged straight back out of the port it came in on (br_netfilter does the
        # DNAT at the bridge layer); without hairpin mode the bridge drops it.
        _do(f"bridge link set dev {host_ifname} hairpin on",
            lambda: self.nl.set_hairpin(idx),
            why="hairpin: the container can reach its own published port")
        return idx

    def configure_container(self, netns_fd: int, netns_name: str, ifname: str, address: str,
                            prefixlen: int, gateway: str | None,
                            route_mtu: int = EGRESS_MTU) -> None:
        """Inside the container: address on eth0, links up, default route via the gateway
        with the MTU of what leaves the network (the link's, LOCAL_MTU, is for the network
        itself)."""
        with _in_netns(netns_fd) as nl:
            idx = nl.link_index(ifname)
            lo = nl.link_index("lo")
            _do(f"ip -n {netns_name} addr add {address}/{prefixlen} dev {ifname}",
                lambda: nl.add_address(idx, address, prefixlen),
                why="inside the container: its address on the network")
            _do(f"ip netns exec {netns_name} sysctl -w net.ipv6.conf.{ifname}.disable_ipv6=1",
                lambda: _ipv6_off(ifname, netns_fd),
                why="IPv4 only, as on the host end: nothing for the bridge to flood")
            _do(f"ip -n {netns_name} link set {ifname} up", lambda: nl.set_link(idx, up=True))
            _do(f"ip -n {netns_name} link set lo up", lambda: nl.set_link(lo, up=True),
                why="its loopback (PID 1 has switched it on already; this changes nothing)")
            if gateway:
                _do(f"ip -n {netns_name} route add default via {gateway} mtu {route_mtu}",
                    lambda: nl.add_default_route(gateway, route_mtu),
                    why="everything that is not on the network goes to the gateway, the "
                    f"bridge, in packets of at most {route_mtu} bytes, as on Ethernet")

    def routes(self) -> list[str]:
        """Destinations of the host's IPv4 routes (main table), as CIDRs, for overlap checks."""
        return self.nl.routes()

    def addresses(self) -> list[str]:
        return self.nl.addresses()


def flush_udp_conntrack(ports: list[int]) -> int:
    """Forget UDP flows to freshly published host ports (`conntrack -D -p udp --dport P`).

    A UDP client that was sending to the port before it was published has a
    conntrack entry without NAT; until it expires (30 s, longer while traffic
    flows) its packets would bypass the new DNAT and never reach the container.
    """
    import socket

    from pyroute2 import Conntrack
    from pyroute2.netlink.exceptions import NetlinkError
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

    removed = 0
    ct = Conntrack()
    try:
        for port in ports:
            oplog.record(f"conntrack -D -p udp --dport {port} || true",
                         why="forget UDP flows that began before the port was published, or "
                         "they would miss the new DNAT (none to forget: not an error)")
            if oplog.skip():
                continue
            match = NFCTAttrTuple(proto=socket.IPPROTO_UDP, dport=port)
            for entry in list(ct.dump_entries(tuple_orig=match)):
                try:
                    ct.delete(entry)
                    removed += 1
                except NetlinkError as e:
                    if e.code != errno.ENOENT:  # it expired meanwhile: fine
                        raise
    finally:
        ct.close()
    return removed
