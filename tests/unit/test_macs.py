"""The MACs minirun derives for its links (pure functions)."""
import pytest

from minirun.network import macs


def octets(mac):
    return bytes.fromhex(mac.replace(":", ""))


def locally_administered_unicast(mac):
    first = octets(mac)[0]
    return first & 0b11 == 0b10


def test_container_mac_is_its_ipv4_address():
    assert macs.container_mac("10.99.0.2") == "02:6d:0a:63:00:02"
    assert macs.container_mac("192.168.255.254") == "02:6d:c0:a8:ff:fe"


def test_container_mac_is_stable_for_a_reused_address():
    assert macs.container_mac("10.99.0.7") == macs.container_mac("10.99.0.7")
    assert macs.container_mac("10.99.0.7") != macs.container_mac("10.99.0.8")


def test_container_mac_wants_ipv4():
    with pytest.raises(ValueError):
        macs.container_mac("fd00::2")


def test_bridge_mac_depends_on_owner_and_network():
    a = macs.bridge_mac("1a2b3c4d", "bridge")
    assert a == macs.bridge_mac("1a2b3c4d", "bridge")
    assert a != macs.bridge_mac("ffffffff", "bridge")     # another state root
    assert a != macs.bridge_mac("1a2b3c4d", "n3")         # another network
    # no ambiguity from where one part ends
    assert macs.bridge_mac("ab", "c") != macs.bridge_mac("a", "bc")


def test_veth_mac_depends_on_the_container_id():
    a = macs.veth_mac("0" * 64)
    assert a == macs.veth_mac("0" * 64)
    assert a != macs.veth_mac("0" * 63 + "1")


@pytest.mark.parametrize("mac", [
    macs.bridge_mac("1a2b3c4d", "bridge"), macs.veth_mac("ab" * 32),
    macs.container_mac("10.99.0.2"), macs.container_mac("255.255.255.255")])
def test_every_mac_is_locally_administered_unicast(mac):
    assert locally_administered_unicast(mac)
    assert mac == mac.lower() and len(octets(mac)) == 6


def test_kinds_never_collide():
    firsts = {octets(macs.bridge_mac("o", str(i)))[0] for i in range(50)}
    assert firsts == {macs.BRIDGE_OCTET}
    firsts = {octets(macs.veth_mac(f"{i:064x}"))[0] for i in range(50)}
    assert firsts == {macs.VETH_OCTET}
    assert octets(macs.container_mac("1.2.3.4"))[0] not in (macs.BRIDGE_OCTET,
                                                           macs.VETH_OCTET)


def test_parse_and_normalize():
    assert macs.parse_mac("0A:0b:0C:0d:0E:0f") == bytes.fromhex("0a0b0c0d0e0f")
    assert macs.normalize("0A:0B:0C:0D:0E:0F") == "0a:0b:0c:0d:0e:0f"
    assert macs.normalize(None) is None
    for bad in ("0a:0b:0c:0d:0e", "0a:0b:0c:0d:0e:0f:00", "0a0b0c0d0e0f", "zz:0b:0c:0d:0e:0f"):
        with pytest.raises(ValueError):
            macs.parse_mac(bad)
