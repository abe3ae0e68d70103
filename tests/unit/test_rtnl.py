"""The rtnetlink messages minirun sends, checked byte for byte (no socket, no root)."""
import socket
import struct

from minirun.network import rtnl


def test_attribute_is_padded_to_four_bytes():
    assert rtnl.attr(rtnl.IFLA_IFNAME, b"eth0\0") == struct.pack("=HH", 9, 3) + b"eth0\0" + b"\0" * 3


def test_nested_attribute_sets_the_flag():
    raw = rtnl.nested(rtnl.IFLA_LINKINFO, rtnl.attr(rtnl.IFLA_INFO_KIND, b"veth"))
    length, kind = struct.unpack_from("=HH", raw)
    assert kind == rtnl.IFLA_LINKINFO | rtnl.NLA_F_NESTED and length == len(raw)


def test_parse_attrs_round_trip():
    raw = rtnl.attr(rtnl.IFLA_IFNAME, b"br0\0") + rtnl.attr(rtnl.IFLA_MASTER, struct.pack("=I", 7))
    attrs = rtnl.parse_attrs(raw)
    assert attrs[rtnl.IFLA_IFNAME] == b"br0\0"
    assert struct.unpack("=I", attrs[rtnl.IFLA_MASTER]) == (7,)


class Recorder(rtnl.RtNetlink):
    """Captures what would be sent instead of talking to the kernel."""

    def __init__(self):
        self.sent = []

    def request(self, msg_type, body, flags=rtnl.NLM_F_ACK):
        self.sent.append((msg_type, flags, body))
        return []


def test_veth_with_its_peer_in_another_namespace():
    r = Recorder()
    r.add_veth("veth0123456789a", "eth0", 42)
    msg_type, flags, body = r.sent[0]
    assert msg_type == rtnl.RTM_NEWLINK
    assert flags & rtnl.NLM_F_CREATE and flags & rtnl.NLM_F_EXCL
    attrs = rtnl.parse_attrs(body, 16)
    assert attrs[rtnl.IFLA_IFNAME] == b"veth0123456789a\0"
    assert rtnl.IFLA_ADDRESS not in attrs  # no MAC asked for: the kernel picks one
    info = rtnl.parse_attrs(attrs[rtnl.IFLA_LINKINFO])
    assert info[rtnl.IFLA_INFO_KIND] == b"veth"
    peer = rtnl.parse_attrs(rtnl.parse_attrs(info[rtnl.IFLA_INFO_DATA])[rtnl.VETH_INFO_PEER], 16)
    assert peer[rtnl.IFLA_IFNAME] == b"eth0\0"
    assert struct.unpack("=I", peer[rtnl.IFLA_NET_NS_FD]) == (42,)
    assert rtnl.IFLA_ADDRESS not in peer


def _hdr(length, kind):
    return struct.pack("=HH", length, kind)


NO_LINK = bytes(16)  # ifinfomsg: AF_UNSPEC, index 0, no flags


def test_veth_with_both_macs_byte_for_byte():
    """`ip link add vethX address 0a:.. type veth peer name eth0 address 02:6d:.. netns NS`:
    both MACs are in the creating message, each in its own ifinfomsg."""
    r = Recorder()
    r.add_veth("vethX", "eth0", 42, "0A:11:22:33:44:55", "02:6d:0a:63:00:02")
    msg_type, flags, body = r.sent[0]
    assert (msg_type, flags) == (rtnl.RTM_NEWLINK,
                                 rtnl.NLM_F_ACK | rtnl.NLM_F_CREATE | rtnl.NLM_F_EXCL)
    peer = (NO_LINK
            + _hdr(9, rtnl.IFLA_IFNAME) + b"eth0\0" + bytes(3)
            + _hdr(10, rtnl.IFLA_ADDRESS) + bytes.fromhex("026d0a630002") + bytes(2)
            + _hdr(8, rtnl.IFLA_NET_NS_FD) + struct.pack("=I", 42))
    data = _hdr(4 + len(peer), rtnl.VETH_INFO_PEER) + peer
    linkinfo = (_hdr(8, rtnl.IFLA_INFO_KIND) + b"veth"  # no NUL, as `ip` sends it
                + _hdr(4 + len(data), rtnl.IFLA_INFO_DATA | rtnl.NLA_F_NESTED) + data)
    assert body == (NO_LINK
                    + _hdr(10, rtnl.IFLA_IFNAME) + b"vethX\0" + bytes(2)
                    + _hdr(10, rtnl.IFLA_ADDRESS) + bytes.fromhex("0a1122334455") + bytes(2)
                    + _hdr(4 + len(linkinfo), rtnl.IFLA_LINKINFO | rtnl.NLA_F_NESTED)
                    + linkinfo)


def test_veth_mtu_on_both_ends_byte_for_byte():
    """`ip link add vethX mtu 65520 type veth peer name eth0 mtu 65520 netns NS`: IFLA_MTU
    in the host end's message and in the peer's, before the namespace."""
    r = Recorder()
    r.add_veth("vethX", "eth0", 42, mtu=65520)
    body = r.sent[0][2]
    mtu = _hdr(8, rtnl.IFLA_MTU) + struct.pack("=I", 65520)
    peer = (NO_LINK + _hdr(9, rtnl.IFLA_IFNAME) + b"eth0\0" + bytes(3)
            + mtu + _hdr(8, rtnl.IFLA_NET_NS_FD) + struct.pack("=I", 42))
    data = _hdr(4 + len(peer), rtnl.VETH_INFO_PEER) + peer
    linkinfo = (_hdr(8, rtnl.IFLA_INFO_KIND) + b"veth"
                + _hdr(4 + len(data), rtnl.IFLA_INFO_DATA | rtnl.NLA_F_NESTED) + data)
    assert body == (NO_LINK + _hdr(10, rtnl.IFLA_IFNAME) + b"vethX\0" + bytes(2) + mtu
                    + _hdr(4 + len(linkinfo), rtnl.IFLA_LINKINFO | rtnl.NLA_F_NESTED)
                    + linkinfo)


def test_default_route_with_an_mtu():
    """`ip route add default via 10.99.0.1 mtu 1500`: RTAX_MTU inside RTA_METRICS, which,
    as iproute2 sends it, carries no nested flag."""
    r = Recorder()
    r.add_default_route("10.99.0.1", 1500)
    attrs = rtnl.parse_attrs(r.sent[0][2], 12)
    assert attrs[rtnl.RTA_GATEWAY] == bytes([10, 99, 0, 1])
    assert attrs[rtnl.RTA_METRICS] == _hdr(8, rtnl.RTAX_MTU) + struct.pack("=I", 1500)


def test_bridge_with_its_mac_byte_for_byte():
    """`ip link add br-x address 06:.. type bridge`."""
    r = Recorder()
    r.add_bridge("br-x", "06:01:02:03:04:05")
    msg_type, flags, body = r.sent[0]
    assert (msg_type, flags) == (rtnl.RTM_NEWLINK,
                                 rtnl.NLM_F_ACK | rtnl.NLM_F_CREATE | rtnl.NLM_F_EXCL)
    assert body == (NO_LINK
                    + _hdr(9, rtnl.IFLA_IFNAME) + b"br-x\0" + bytes(3)
                    + _hdr(10, rtnl.IFLA_ADDRESS) + bytes.fromhex("060102030405") + bytes(2)
                    + _hdr(16, rtnl.IFLA_LINKINFO | rtnl.NLA_F_NESTED)
                    + _hdr(10, rtnl.IFLA_INFO_KIND) + b"bridge" + bytes(2))
    r.add_bridge("br-y")
    assert rtnl.IFLA_ADDRESS not in rtnl.parse_attrs(r.sent[1][2], 16)


def test_set_link_master_up_and_alias_in_one_message():
    """`ip link set vethX master br-x up alias "minirun container web"`: the alias goes
    without a NUL, as `ip` sends it."""
    r = Recorder()
    r.set_link(7, up=True, master=3, alias="minirun container web")
    msg_type, flags, body = r.sent[0]
    assert (msg_type, flags) == (rtnl.RTM_NEWLINK, rtnl.NLM_F_ACK)
    alias = b"minirun container web"
    assert body == (struct.pack("=BxHiII", socket.AF_UNSPEC, 0, 7, rtnl.IFF_UP, rtnl.IFF_UP)
                    + _hdr(8, rtnl.IFLA_MASTER) + struct.pack("=I", 3)
                    + _hdr(4 + len(alias), rtnl.IFLA_IFALIAS) + alias + bytes(3))


def test_alias_alone_changes_no_flag():
    r = Recorder()
    r.set_link(9, alias="x")
    assert r.sent[0][2] == (struct.pack("=BxHiII", 0, 0, 9, 0, 0)
                            + _hdr(5, rtnl.IFLA_IFALIAS) + b"x" + bytes(3))


def test_alias_is_cut_to_what_the_kernel_takes():
    assert len(rtnl.alias_bytes("a" * 300)) == 255
    # never half a character
    assert rtnl.alias_bytes("é" * 200) == ("é" * 127).encode()


def _link_reply(index, flags, *attrs):
    return struct.pack("=BxHiII", socket.AF_UNSPEC, 1, index, flags, 0) + b"".join(attrs)


def test_parse_link_reads_kind_mac_alias_master():
    reply = _link_reply(
        12, rtnl.IFF_UP,
        rtnl.attr(rtnl.IFLA_IFNAME, b"veth0123\0"),
        rtnl.attr(rtnl.IFLA_ADDRESS, bytes.fromhex("0a0b0c0d0e0f")),
        rtnl.attr(rtnl.IFLA_MASTER, struct.pack("=I", 4)),
        rtnl.attr(rtnl.IFLA_IFALIAS, b"minirun container web\0"),
        rtnl.nested(rtnl.IFLA_LINKINFO, rtnl.attr(rtnl.IFLA_INFO_KIND, b"veth\0"),
                    rtnl.nested(rtnl.IFLA_INFO_DATA)))
    link = rtnl.parse_link(reply)
    assert link == rtnl.LinkInfo(12, "veth0123", "veth", "0a:0b:0c:0d:0e:0f",
                                 "minirun container web", 4, rtnl.IFF_UP)
    assert link.up


def test_parse_link_without_kind_mac_alias_or_master():
    link = rtnl.parse_link(_link_reply(1, 0, rtnl.attr(rtnl.IFLA_IFNAME, b"tun0\0")))
    assert (link.index, link.name, link.kind, link.mac, link.alias, link.master) == \
        (1, "tun0", None, None, None, 0)
    assert not link.up


class Replying(rtnl.RtNetlink):
    def __init__(self, replies):
        self.replies, self.sent = replies, []

    def request(self, msg_type, body, flags=rtnl.NLM_F_ACK):
        self.sent.append((msg_type, flags, body))
        return self.replies


def test_link_by_name():
    r = Replying([_link_reply(5, 0, rtnl.attr(rtnl.IFLA_IFNAME, b"br-x\0"),
                              rtnl.attr(rtnl.IFLA_ADDRESS, bytes.fromhex("060102030405")),
                              rtnl.nested(rtnl.IFLA_LINKINFO,
                                          rtnl.attr(rtnl.IFLA_INFO_KIND, b"bridge\0")))])
    link = r.link("br-x")
    assert (link.index, link.kind, link.mac) == (5, "bridge", "06:01:02:03:04:05")
    assert r.link_index("br-x") == 5
    msg_type, flags, body = r.sent[0]
    assert (msg_type, flags) == (rtnl.RTM_GETLINK, 0)
    assert body == NO_LINK + _hdr(9, rtnl.IFLA_IFNAME) + b"br-x\0" + bytes(3)


def test_hairpin_goes_to_the_bridge_family():
    r = Recorder()
    r.set_hairpin(5)
    msg_type, _, body = r.sent[0]
    family, _, index, _, _ = struct.unpack_from("=BxHiII", body)
    assert msg_type == rtnl.RTM_SETLINK and family == socket.AF_BRIDGE and index == 5
    protinfo = rtnl.parse_attrs(rtnl.parse_attrs(body, 16)[rtnl.IFLA_PROTINFO])
    assert protinfo[rtnl.IFLA_BRPORT_MODE] == b"\x01"


def test_address_and_default_route():
    r = Recorder()
    r.add_address(3, "10.99.0.2", 24)
    r.add_default_route("10.99.0.1")
    (t1, _, addr), (t2, _, route) = r.sent
    assert t1 == rtnl.RTM_NEWADDR and struct.unpack_from("=BBBBI", addr) == (socket.AF_INET, 24, 0, 0, 3)
    assert rtnl.parse_attrs(addr, 8)[rtnl.IFA_LOCAL] == bytes([10, 99, 0, 2])
    assert t2 == rtnl.RTM_NEWROUTE
    assert rtnl.parse_attrs(route, 12)[rtnl.RTA_GATEWAY] == bytes([10, 99, 0, 1])


def test_group_delete_names_no_link():
    r = Recorder()
    r.del_group(0x40000001)
    msg_type, _, body = r.sent[0]
    assert msg_type == rtnl.RTM_DELLINK and struct.unpack_from("=BxHiII", body)[2] == 0
    assert struct.unpack("=I", rtnl.parse_attrs(body, 16)[rtnl.IFLA_GROUP]) == (0x40000001,)
