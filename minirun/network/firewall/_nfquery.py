"""Look set elements up by key in the kernel (nfnetlink NFT_MSG_GETSETELEM), for the
comments that prove whose they are.

Why not libnftables: `nft get element` makes it load the whole set into its cache
first, so one lookup costs O(N) (~10 ms at 2000 elements); the kernel's own lookup of
one key is O(1) (~0.05 ms here). Used by the removal of published ports, which must
delete only elements tagged with its owner and container.

The request carries the table, the set and one element's key; the kernel answers with
the element (NEWSETELEM: key, user data holding the comment, a map's value) or the
error ENOENT (no such element, set or table). Keys are the kernel's bytes: a port is
2 bytes in network order; in a concatenation each field takes a whole 4-byte register
(an address, a port and two bytes of padding).
"""
from __future__ import annotations

import errno
import os
import _socket as socket  # not socket.py: its import (selectors, enums) is ~3 ms of every start
import struct

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_NEWSETELEM = 12
NFT_MSG_GETSETELEM = 13
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF
# enum nft_set_elem_list_attributes / nft_list_attributes / nft_set_elem_attributes
LIST_TABLE, LIST_SET, LIST_ELEMENTS = 1, 2, 3
LIST_ELEM = 1
ELEM_KEY, ELEM_USERDATA = 1, 6
DATA_VALUE = 1
UDATA_COMMENT = 0  # NFTNL_UDATA_SET_ELEM_COMMENT


class QueryError(Exception):
    """The lookup could not be made or its answer not understood (not: "absent")."""


def _attr(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + b"\0" * (-size % 4)


def _attrs(data: bytes):
    off = 0
    while off + 4 <= len(data):
        size, kind = struct.unpack_from("=HH", data, off)
        if size < 4:
            raise QueryError("malformed attribute")
        yield kind & NLA_TYPE_MASK, data[off + 4:off + size]
        off += (size + 3) & ~3


def key_bytes(key: str) -> bytes:
    """The kernel's bytes of a key as nftables prints it: 8080, 127.0.0.1 . 8080."""
    fields = [f.strip() for f in key.split(" . ")]
    out = b""
    for f in fields:
        if "." in f:
            out += socket.inet_aton(f)
        else:
            port = struct.pack(">H", int(f))
            out += port if len(fields) == 1 else port + b"\0\0"
    return out


def request(table: str, set_name: str, key: str, seq: int = 1) -> bytes:
    elem = _attr(LIST_ELEM | NLA_F_NESTED,
                 _attr(ELEM_KEY | NLA_F_NESTED, _attr(DATA_VALUE, key_bytes(key))))
    body = (struct.pack("=BBH", socket.AF_INET, 0, 0)
            + _attr(LIST_TABLE, table.encode() + b"\0")
            + _attr(LIST_SET, set_name.encode() + b"\0")
            + _attr(LIST_ELEMENTS | NLA_F_NESTED, elem))
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETSETELEM,
                       NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


def comment_of(payload: bytes) -> str | None:
    """The comment in a NEWSETELEM message's payload (after the nlmsghdr); None: the
    element has none."""
    for kind, value in _attrs(payload[4:]):  # past the nfgenmsg
        if kind != LIST_ELEMENTS:
            continue
        for k2, elem in _attrs(value):
            if k2 != LIST_ELEM:
                continue
            for k3, data in _attrs(elem):
                if k3 != ELEM_USERDATA:
                    continue
                off = 0
                while off + 2 <= len(data):
                    utype, ulen = data[off], data[off + 1]
                    if utype == UDATA_COMMENT:
                        return data[off + 2:off + 2 + ulen].rstrip(b"\0").decode(
                            errors="replace")
                    off += 2 + ulen
            return None
    raise QueryError("no element in the answer")


class Lookup:
    """One netlink socket (in this process's network namespace) for several lookups."""

    def __init__(self):
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                      NETLINK_NETFILTER)
            self.sock.bind((0, 0))
        except OSError as exc:
            raise QueryError(f"netlink socket: {exc.strerror}") from None
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def comment(self, table: str, set_name: str, key: str) -> tuple[bool, str | None]:
        """(present, comment) of the element `key` of `set_name` in `ip table`."""
        self.seq += 1
        try:
            self.sock.send(request(table, set_name, key, self.seq))
        except OSError as exc:
            raise QueryError(f"netlink send: {exc.strerror}") from None
        found: tuple[bool, str | None] | None = None
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError as exc:
                raise QueryError(f"netlink recv: {exc.strerror}") from None
            off = 0
            while off + 16 <= len(data):
                size, mtype, _flags, seq, _pid = struct.unpack_from("=IHHII", data, off)
                if size < 16:
                    raise QueryError("malformed message")
                payload = data[off + 16:off + size]
                off += (size + 3) & ~3
                if seq != self.seq:
                    continue
                if mtype == NLMSG_ERROR:
                    err = -struct.unpack_from("=i", payload)[0]
                    if err == 0:  # the ACK: the answer came before it
                        if found is None:
                            raise QueryError("acknowledged without an answer")
                        return found
                    if err == errno.ENOENT:
                        return (False, None)
                    raise QueryError(f"netlink: {os.strerror(err)}")
                if mtype == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM:
                    found = (True, comment_of(payload))
