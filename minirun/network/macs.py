"""The MAC addresses minirun gives its links: derived, never random. Pure functions.

Every one is *locally administered unicast* (the first octet's two low bits are
`10`), so it can never equal a vendor's burned-in address, and the first octet
tells the kind at a glance in `ip link`:

  02:6d:IP:IP:IP:IP   a container's eth0: 0x6d is "m" for minirun, then the four
                      bytes of its IPv4 address (Docker's idea, with its 02:42
                      prefix left to Docker). A container that gets an address
                      again gets the same MAC, so the neighbours' ARP caches stay
                      right and it is reachable at once, not after ~20 s.
  06:xx:xx:xx:xx:xx   a bridge: 40 bits of sha256(owner, network). A bridge whose
                      MAC was set keeps it as ports come and go (without it Linux
                      gives the bridge its lowest port's MAC, which changes when
                      that container leaves: every other container loses its
                      gateway until its ARP entry expires). Set in the very
                      message that creates the bridge, it is also the atomic
                      proof that the bridge is this state root's, for this network.
  0a:xx:xx:xx:xx:xx   the host end of a container's veth: 40 bits of
                      sha256(container id), the proof that the veth is ours.

The kinds never collide: their first octets differ.
"""
from __future__ import annotations

import ipaddress

from ..fsutil import sha256

CONTAINER_PREFIX = b"\x02\x6d"
BRIDGE_OCTET = 0x06
VETH_OCTET = 0x0A


def format_mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def parse_mac(mac: str) -> bytes:
    """"02:6D:0a:..." -> 6 bytes; ValueError if it is not a MAC-48."""
    parts = mac.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"not a MAC address: {mac!r}")
    return bytes(int(p, 16) for p in parts)


def normalize(mac: str | None) -> str | None:
    """Lower case with colons, for comparing MACs however they were written."""
    return None if mac is None else format_mac(parse_mac(mac))


def _hashed(first_octet: int, *parts: str) -> str:
    digest = sha256("\0".join(parts).encode()).digest()
    return format_mac(bytes([first_octet]) + digest[:5])


def bridge_mac(owner: str, network: str) -> str:
    """The bridge of `network` made by the minirun whose state root is tagged `owner`."""
    return _hashed(BRIDGE_OCTET, "minirun-bridge", owner, network)


def veth_mac(container_id: str) -> str:
    """The host end of container `container_id`'s veth."""
    return _hashed(VETH_OCTET, "minirun-veth", container_id)


def connect_veth_mac(container_id: str, network: str) -> str:
    """The host end of the veth `network connect` adds for container `container_id`."""
    return _hashed(VETH_OCTET, "minirun-veth-connect", container_id, network)


def container_mac(ip: str) -> str:
    """The container's eth0, from its IPv4 address."""
    return format_mac(CONTAINER_PREFIX + ipaddress.IPv4Address(ip).packed)
