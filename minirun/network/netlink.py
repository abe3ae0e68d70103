"""Netlink: the only module that imports pyroute2.

Every change is also recorded in the operation log as the `ip` command that
does the same, so a learner can replay it by hand. To talk to a container's
namespace without forking, a netlink socket is opened *inside* it (setns,
socket, setns back): a socket stays bound to the namespace it was born in.
"""
from __future__ import annotations

import errno
import os

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from .. import kernel as k
from .. import oplog
from ..errors import SyscallError


def _fail(cmd: str, e: NetlinkError) -> SyscallError:
    return SyscallError(cmd, None, e.code or errno.EIO)


class _Ns:
    """A netlink socket inside another network namespace (given as an open ns fd)."""

    def __init__(self, netns_fd: int):
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            k.kernel.setns(netns_fd, k.CLONE_NEWNET, "container network namespace")
            try:
                self.ipr = IPRoute()
            finally:
                k.kernel.setns(own, k.CLONE_NEWNET, "host network namespace")
        finally:
            os.close(own)

    def __enter__(self) -> IPRoute:
        return self.ipr

    def __exit__(self, *exc) -> None:
        self.ipr.close()


class Netlink:
    def __init__(self) -> None:
        self._ipr: IPRoute | None = None

    @property
    def ipr(self) -> IPRoute:
        if self._ipr is None:
            self._ipr = IPRoute()
        return self._ipr

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

    def index(self, ifname: str) -> int | None:
        found = self.ipr.link_lookup(ifname=ifname)
        return found[0] if found else None

    def ensure_bridge(self, name: str, address: str, prefixlen: int) -> bool:
        """Create the bridge (the "virtual switch") with the gateway address; True if new."""
        created = False
        if self.index(name) is None:
            cmd = f"ip link add {name} type bridge"
            oplog.record(cmd)
            try:
                self.ipr.link("add", ifname=name, kind="bridge")
                created = True
            except NetlinkError as e:
                if e.code != errno.EEXIST:  # another minirun made it just now
                    raise _fail(cmd, e) from None
        idx = self.index(name)
        have = {a.get_attr("IFA_ADDRESS") for a in self.ipr.get_addr(index=idx, family=2)}
        if address not in have:
            cmd = f"ip addr add {address}/{prefixlen} dev {name}"
            oplog.record(cmd)
            try:
                self.ipr.addr("add", index=idx, address=address, prefixlen=prefixlen)
            except NetlinkError as e:
                if e.code != errno.EEXIST:
                    raise _fail(cmd, e) from None
        oplog.record(f"ip link set {name} up")
        self.ipr.link("set", index=idx, state="up")
        return created

    def delete_link(self, name: str) -> None:
        """`ip link del NAME`; a link that is already gone is fine."""
        idx = self.index(name)
        if idx is None:
            return
        cmd = f"ip link del {name}"
        oplog.record(cmd)
        try:
            self.ipr.link("del", index=idx)
        except NetlinkError as e:
            if e.code not in (errno.ENODEV, errno.ENOENT):
                raise _fail(cmd, e) from None

    def bridge_ports(self, bridge: str) -> list[str]:
        idx = self.index(bridge)
        if idx is None:
            return []
        return [l.get_attr("IFLA_IFNAME") for l in self.ipr.get_links()
                if l.get_attr("IFLA_MASTER") == idx]

    def add_veth(self, host_ifname: str, peer_ifname: str, netns_fd: int, netns_name: str,
                 bridge: str) -> None:
        """The "virtual cable": one end in the container's namespace (so the kernel removes
        the pair if that namespace dies), the other plugged into the bridge."""
        cmd = (f"ip link add {host_ifname} type veth peer name {peer_ifname} "
               f"netns {netns_name}")
        oplog.record(cmd)
        try:
            self.ipr.link("add", ifname=host_ifname, kind="veth",
                          peer={"ifname": peer_ifname, "net_ns_fd": netns_fd})
        except NetlinkError as e:
            raise _fail(cmd, e) from None
        idx = self.index(host_ifname)
        master = self.index(bridge)
        cmd = f"ip link set {host_ifname} master {bridge} up"
        oplog.record(cmd)
        try:
            self.ipr.link("set", index=idx, master=master, state="up")
        except NetlinkError as e:
            raise _fail(cmd, e) from None
        # Hairpin: a container reaching its own published port has its DNATed packet
        # bridged straight back out of the port it came in on (br_netfilter does the
        # DNAT at the bridge layer); without hairpin mode the bridge drops it.
        cmd = f"bridge link set dev {host_ifname} hairpin on"
        oplog.record(cmd)
        try:
            self.ipr.brport("set", index=idx, mode=1)
        except NetlinkError as e:
            raise _fail(cmd, e) from None

    def configure_container(self, netns_fd: int, netns_name: str, ifname: str, address: str,
                            prefixlen: int, gateway: str | None) -> None:
        """Inside the container: address on eth0, links up, default route via the gateway."""
        with _Ns(netns_fd) as ipr:
            idx = ipr.link_lookup(ifname=ifname)[0]
            lo = ipr.link_lookup(ifname="lo")[0]
            steps = [
                (f"ip -n {netns_name} addr add {address}/{prefixlen} dev {ifname}",
                 lambda: ipr.addr("add", index=idx, address=address, prefixlen=prefixlen)),
                (f"ip -n {netns_name} link set {ifname} up",
                 lambda: ipr.link("set", index=idx, state="up")),
                (f"ip -n {netns_name} link set lo up",
                 lambda: ipr.link("set", index=lo, state="up")),
            ]
            if gateway:
                steps.append((f"ip -n {netns_name} route add default via {gateway}",
                              lambda: ipr.route("add", dst="default", gateway=gateway)))
            for cmd, step in steps:
                oplog.record(cmd)
                try:
                    step()
                except NetlinkError as e:
                    raise _fail(cmd, e) from None

    def routes(self) -> list[str]:
        """Destinations of the host's IPv4 routes (main table), as CIDRs, for overlap checks."""
        out = []
        for r in self.ipr.get_routes(family=2, table=254):
            dst = r.get_attr("RTA_DST")
            if dst:
                out.append(f"{dst}/{r['dst_len']}")
        return out

    def addresses(self) -> list[str]:
        return [a.get_attr("IFA_ADDRESS") for a in self.ipr.get_addr(family=2)]


def flush_udp_conntrack(ports: list[int]) -> int:
    """Forget UDP flows to freshly published host ports (`conntrack -D -p udp --dport P`).

    A UDP client that was sending to the port before it was published has a
    conntrack entry without NAT; until it expires (30 s, longer while traffic
    flows) its packets would bypass the new DNAT and never reach the container.
    """
    import socket

    from pyroute2 import Conntrack
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

    removed = 0
    ct = Conntrack()
    try:
        for port in ports:
            oplog.record(f"conntrack -D -p udp --dport {port}")
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
