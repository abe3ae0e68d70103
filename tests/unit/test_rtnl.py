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
    info = rtnl.parse_attrs(attrs[rtnl.IFLA_LINKINFO])
    assert info[rtnl.IFLA_INFO_KIND] == b"veth"
    peer = rtnl.parse_attrs(rtnl.parse_attrs(info[rtnl.IFLA_INFO_DATA])[rtnl.VETH_INFO_PEER], 16)
    assert peer[rtnl.IFLA_IFNAME] == b"eth0\0"
    assert struct.unpack("=I", peer[rtnl.IFLA_NET_NS_FD]) == (42,)


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
