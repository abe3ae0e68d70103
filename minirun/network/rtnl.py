"""A minimal rtnetlink client: the handful of link, address and route messages minirun needs.

Why not pyroute2 here: importing it costs 95-200 ms and ~21 MB on these
machines, more than the whole start-up budget of a container; the messages
minirun sends on the start path are a dozen fixed shapes. pyroute2 stays for
what it does better (conntrack, see netlink.py). Only netlink.py uses this.

Each message is: nlmsghdr, a fixed header (ifinfomsg / ifaddrmsg / rtmsg),
then attributes (rtattr: length, type, payload padded to 4 bytes), the same
bytes `ip link`, `ip addr` and `ip route` send.
"""
from __future__ import annotations

import ipaddress
import os
import _socket as socket  # not socket.py: its import (selectors, enums) is ~3 ms of every start
import struct
from ..tuples import NamedTuple

from .macs import format_mac, parse_mac

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x200, 0x400, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_F_NESTED = 0x8000

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_PROTINFO, IFLA_LINKINFO = 1, 3, 4, 10, 12, 18
IFLA_IFALIAS, IFLA_GROUP, IFLA_NET_NS_FD = 20, 27, 28
IFALIASZ = 256  # the kernel's limit, terminating NUL included
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFLA_BRPORT_MODE = 4
IFF_UP = 0x1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_GATEWAY, RTA_METRICS = 1, 5, 8
RTAX_MTU = 2
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTATTR = struct.Struct("=HH")


def attr(kind: int, payload: bytes) -> bytes:
    raw = _RTATTR.pack(_RTATTR.size + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def nested(kind: int, *attrs: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def ifname(name: str) -> bytes:
    return name.encode() + b"\0"


def ifinfomsg(index: int = 0, flags: int = 0, change: int = 0,
              family: int = socket.AF_UNSPEC) -> bytes:
    return _IFINFOMSG.pack(family, 0, index, flags, change)


def alias_bytes(alias: str) -> bytes:
    """IFLA_IFALIAS payload: no NUL (as `ip link set X alias A` sends), cut to what the
    kernel takes (255 bytes) on a character boundary."""
    raw = alias.encode()[:IFALIASZ - 1]
    return raw.decode(errors="ignore").encode()


class LinkInfo(NamedTuple):
    """What minirun needs to know about one link (one RTM_NEWLINK reply)."""
    index: int
    name: str
    kind: str | None      # IFLA_INFO_KIND: "bridge", "veth", ...; None for lo, hardware
    mac: str | None       # IFLA_ADDRESS, "aa:bb:cc:dd:ee:ff"; None if it has none
    alias: str | None     # IFLA_IFALIAS; None if unset
    master: int           # ifindex of its bridge, 0 if none
    flags: int = 0        # ifi_flags (IFF_UP, ...)

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)


def parse_link(payload: bytes) -> LinkInfo:
    """An ifinfomsg and its attributes, as the kernel sends it for a link."""
    _, _, index, flags, _ = _IFINFOMSG.unpack_from(payload)
    attrs = parse_attrs(payload, _IFINFOMSG.size)
    name = attrs.get(IFLA_IFNAME, b"").split(b"\0", 1)[0].decode(errors="replace")
    kind = None
    if IFLA_LINKINFO in attrs:
        raw = parse_attrs(attrs[IFLA_LINKINFO]).get(IFLA_INFO_KIND)
        if raw is not None:
            kind = raw.split(b"\0", 1)[0].decode(errors="replace")
    mac = None
    if len(attrs.get(IFLA_ADDRESS, b"")) == 6:
        mac = format_mac(attrs[IFLA_ADDRESS])
    alias = None
    if attrs.get(IFLA_IFALIAS, b"").rstrip(b"\0"):
        alias = attrs[IFLA_IFALIAS].split(b"\0", 1)[0].decode(errors="replace")
    master = struct.unpack("=I", attrs[IFLA_MASTER])[0] if IFLA_MASTER in attrs else 0
    return LinkInfo(index, name, kind, mac, alias, master, flags)


def parse_attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    out = {}
    while offset + _RTATTR.size <= len(data):
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size:
            break
        out[kind & ~NLA_F_NESTED] = data[offset + _RTATTR.size: offset + length]
        offset += (length + 3) & ~3
    return out


class RtNetlink:
    """One NETLINK_ROUTE socket, in the network namespace of the process that opened it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RtNetlink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transport ---------------------------------------------------------
    def request(self, msg_type: int, body: bytes, flags: int = NLM_F_ACK) -> list[bytes]:
        """Send one message; return the payloads of the replies. Raises OSError(errno)."""
        self.seq += 1
        seq = self.seq
        hdr = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), msg_type, NLM_F_REQUEST | flags, seq, 0)
        self.sock.send(hdr + body)
        replies: list[bytes] = []
        while True:
            data = self.sock.recv(1 << 16)
            offset = 0
            while offset + _NLMSGHDR.size <= len(data):
                length, kind, mflags, mseq, _ = _NLMSGHDR.unpack_from(data, offset)
                payload = data[offset + _NLMSGHDR.size: offset + length]
                offset += (length + 3) & ~3
                if mseq != seq:
                    continue
                if kind == NLMSG_ERROR:
                    err = -struct.unpack_from("=i", payload)[0]
                    if err:
                        raise OSError(err, os.strerror(err))
                    return replies  # the ACK
                if kind == NLMSG_DONE:
                    return replies
                replies.append(payload)
                if not mflags & NLM_F_MULTI and not flags & NLM_F_ACK:
                    return replies

    # -- links ---------------------------------------------------------------
    def link(self, name: str) -> LinkInfo | None:
        """The link called `name` (`ip -d link show NAME`), or None."""
        try:
            replies = self.request(RTM_GETLINK, ifinfomsg() + attr(IFLA_IFNAME, ifname(name)),
                                   flags=0)
        except OSError as e:
            if e.errno in (19, 2):  # ENODEV, ENOENT
                return None
            raise
        return parse_link(replies[0]) if replies else None

    def link_index(self, name: str) -> int | None:
        found = self.link(name)
        return found.index if found else None

    def links(self) -> list[LinkInfo]:
        """Every link of the namespace."""
        return [parse_link(p) for p in self.request(RTM_GETLINK, ifinfomsg(), flags=NLM_F_DUMP)]

    def add_bridge(self, name: str, mac: str | None = None) -> None:
        """`ip link add NAME [address MAC] type bridge`: the MAC is set by the creating
        message itself, so a bridge carrying it was made by whoever chose it."""
        body = ifinfomsg() + attr(IFLA_IFNAME, ifname(name))
        if mac is not None:
            body += attr(IFLA_ADDRESS, parse_mac(mac))
        body += nested(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"bridge"))
        self.request(RTM_NEWLINK, body, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)

    def add_veth(self, name: str, peer: str, peer_netns_fd: int, mac: str | None = None,
                 peer_mac: str | None = None, mtu: int | None = None) -> None:
        """`ip link add NAME [address MAC] [mtu N] type veth peer name PEER [address
        PEER_MAC] [mtu N] netns NS`: both MACs (and MTUs) set by the creating message."""
        mtu_attr = attr(IFLA_MTU, struct.pack("=I", mtu)) if mtu is not None else b""
        peer_info = ifinfomsg() + attr(IFLA_IFNAME, ifname(peer))
        if peer_mac is not None:
            peer_info += attr(IFLA_ADDRESS, parse_mac(peer_mac))
        peer_info += mtu_attr + attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd))
        body = ifinfomsg() + attr(IFLA_IFNAME, ifname(name))
        if mac is not None:
            body += attr(IFLA_ADDRESS, parse_mac(mac))
        body += mtu_attr
        body += nested(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"veth"),
                       nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_info)))
        self.request(RTM_NEWLINK, body, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)

    def set_link(self, index: int, *, up: bool | None = None, master: int | None = None,
                 alias: str | None = None) -> None:
        """`ip link set DEV [master M] [up|down] [alias A]`, in one message. (The kernel
        ignores IFLA_IFALIAS in a creating message: the alias can only come after.)"""
        flags = change = 0
        if up is not None:
            flags, change = (IFF_UP if up else 0), IFF_UP
        body = ifinfomsg(index, flags, change)
        if master is not None:
            body += attr(IFLA_MASTER, struct.pack("=I", master))
        if alias is not None:
            body += attr(IFLA_IFALIAS, alias_bytes(alias))
        self.request(RTM_NEWLINK, body)

    def set_hairpin(self, index: int, on: bool = True) -> None:
        body = (ifinfomsg(index, family=socket.AF_BRIDGE)
                + nested(IFLA_PROTINFO, attr(IFLA_BRPORT_MODE, bytes([1 if on else 0]))))
        self.request(RTM_SETLINK, body)

    def del_link(self, index: int) -> None:
        self.request(RTM_DELLINK, ifinfomsg(index))

    def set_group(self, index: int, group: int) -> None:
        self.request(RTM_NEWLINK, ifinfomsg(index) + attr(IFLA_GROUP, struct.pack("=I", group)))

    def del_group(self, group: int) -> None:
        """Delete every link of a group in one batch (`ip link del group N`)."""
        self.request(RTM_DELLINK, ifinfomsg() + attr(IFLA_GROUP, struct.pack("=I", group)))

    def groups_in_use(self) -> set[int]:
        out = set()
        for p in self.request(RTM_GETLINK, ifinfomsg(), flags=NLM_F_DUMP):
            attrs = parse_attrs(p, _IFINFOMSG.size)
            if IFLA_GROUP in attrs:
                out.add(struct.unpack("=I", attrs[IFLA_GROUP])[0])
        return out

    # -- addresses and routes --------------------------------------------------
    def add_address(self, index: int, address: str, prefixlen: int) -> None:
        raw = ipaddress.IPv4Address(address).packed
        body = (_IFADDRMSG.pack(socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
                + attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw))
        self.request(RTM_NEWADDR, body, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)

    def addresses(self, index: int | None = None) -> list[str]:
        out = []
        for p in self.request(RTM_GETADDR, _IFADDRMSG.pack(socket.AF_INET, 0, 0, 0, 0),
                              flags=NLM_F_DUMP):
            if index is not None and _IFADDRMSG.unpack_from(p)[4] != index:
                continue
            attrs = parse_attrs(p, _IFADDRMSG.size)
            raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
            if raw:
                out.append(str(ipaddress.IPv4Address(raw)))
        return out

    def add_default_route(self, gateway: str, mtu: int | None = None) -> None:
        """`ip route add default via GATEWAY [mtu N]`; the metrics are a block of
        attributes inside RTA_METRICS (iproute2 sends it without the nested flag too)."""
        body = (_RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT,
                            RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
                + attr(RTA_GATEWAY, ipaddress.IPv4Address(gateway).packed))
        if mtu is not None:
            body += attr(RTA_METRICS, attr(RTAX_MTU, struct.pack("=I", mtu)))
        self.request(RTM_NEWROUTE, body, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)

    def routes(self) -> list[str]:
        """Destinations (CIDR) of the IPv4 routes of the main table, default excluded."""
        out = []
        for p in self.request(RTM_GETROUTE, _RTMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0),
                              flags=NLM_F_DUMP):
            family, dst_len, _, _, table, *_ = _RTMSG.unpack_from(p)
            attrs = parse_attrs(p, _RTMSG.size)
            if table != RT_TABLE_MAIN or RTA_DST not in attrs:
                continue
            out.append(f"{ipaddress.IPv4Address(attrs[RTA_DST])}/{dst_len}")
        return out
