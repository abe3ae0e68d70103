"""Port publishing specs (`-p`): parsing, conflict checks, and free host ports.

Parsing is pure and strict so that `minirun run` can refuse a bad `-p` before
it creates anything. The only host-touching helpers are `host_port_in_use` and
`pick_free_port`, which probe by binding a socket: the kernel is the one
authority on whether a port is taken, so we ask it instead of parsing
/proc/net/tcp.

Syntax (Docker's): ``[IP:][HOSTPORT[-END]:]CONTAINERPORT[-END][/tcp|/udp]``.
"""
from __future__ import annotations

import errno
import os
import ipaddress
import re
import _socket  # not socket.py: its import (selectors, enums) is ~3 ms of every start
from pathlib import Path
from collections.abc import Iterable
from ..tuples import NamedTuple

from minirun.errors import Conflict, SyscallError, UsageError

PROTOCOLS = ("tcp", "udp")
PORT_MIN, PORT_MAX = 1, 65535
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# Used when /proc is unreadable; it is the Linux default.
DEFAULT_EPHEMERAL_RANGE = (32768, 60999)

# Digits only: int() would also accept " 80", "+80" and "8_0".
_NUMBER = re.compile(r"[0-9]+")


class PortMapping(NamedTuple):  # a NamedTuple: dataclasses costs ~6 ms to import
    """One published port. A range in a `-p` value becomes several of these."""

    host_ip: str | None  # None = all host addresses
    host_port: int | None  # None = pick a free one later
    container_port: int
    proto: str  # "tcp" | "udp"
    host_range: tuple[int, int] | None = None  # -p 8000-8010:80: host_port picked in it

    @classmethod
    def parse(cls, spec: str) -> list["PortMapping"]:
        """Parse one `-p` value; raise UsageError quoting the spec if it is bad."""
        return _Parser(spec).parse()

    def __str__(self) -> str:
        ip = self.host_ip or "0.0.0.0"
        host = self.host_port if self.host_port is not None else "?"
        return f"{ip}:{host}->{self.container_port}/{self.proto}"


class _Parser:
    """Parses one spec; holds it so every error can quote it."""

    def __init__(self, spec: str):
        self.spec = spec

    def fail(self, why: str) -> UsageError:
        return UsageError(f'invalid port spec "{self.spec}": {why}')

    def parse(self) -> list[PortMapping]:
        spec = self.spec
        if not spec or not spec.strip():
            raise self.fail("empty")
        if spec != spec.strip():
            raise self.fail("contains spaces")
        rest, proto = self._split_proto(spec)
        parts = rest.split(":")
        if len(parts) > 3:
            if spec.startswith("[") or self._looks_like_ipv6(parts):
                raise self.fail("IPv6 is not supported yet")
            raise self.fail("too many colons (expected [IP:][HOSTPORT:]CONTAINERPORT)")
        if parts[0].startswith("["):
            raise self.fail("IPv6 is not supported yet")

        host_ip: str | None = None
        host_range: tuple[int, int] | None = None
        if len(parts) == 3:
            host_ip = self._parse_ip(parts[0])
            if parts[1]:  # "IP::80" leaves the host port to be picked
                host_range = self._parse_range(parts[1], "host port")
        elif len(parts) == 2:
            if not parts[0]:
                raise self.fail("host port is empty (omit it, or write IP::CONTAINERPORT)")
            host_range = self._parse_range(parts[0], "host port")
        container_range = self._parse_range(parts[-1], "container port")
        return self._expand(host_ip, host_range, container_range, proto)

    def _split_proto(self, spec: str) -> tuple[str, str]:
        if "/" not in spec:
            return spec, "tcp"
        rest, _, proto = spec.rpartition("/")
        if proto not in PROTOCOLS:
            raise self.fail(f'unknown protocol "{proto}" (expected tcp or udp)')
        if not rest:
            raise self.fail("no port before the protocol")
        return rest, proto

    @staticmethod
    def _looks_like_ipv6(parts: list[str]) -> bool:
        """True if everything but the last two fields reads as an IPv6 address."""
        try:
            ipaddress.IPv6Address(":".join(parts[:-2]))
            return True
        except ValueError:
            return False

    def _parse_ip(self, text: str) -> str | None:
        if not text:
            return None  # ":8080:80" = all addresses, as Docker reads it
        try:
            ip = ipaddress.IPv4Address(text)
        except ValueError:
            raise self.fail(f'host IP "{text}" is not a valid IPv4 address') from None
        # 0.0.0.0 means "every address"; one spelling of that keeps the
        # conflict check in parse_all simple.
        return None if ip.is_unspecified else str(ip)

    def _parse_port(self, text: str, what: str) -> int:
        if not text:
            raise self.fail(f"{what} is empty")
        if not _NUMBER.fullmatch(text):
            raise self.fail(f'{what} "{text}" is not a number')
        port = int(text)
        if port == 0 and what == "host port":
            return 0  # -p 0:80: a free port, as Docker
        if not PORT_MIN <= port <= PORT_MAX:
            raise self.fail(f"{what} {port} is out of range {PORT_MIN}-{PORT_MAX}")
        return port

    def _parse_range(self, text: str, what: str) -> tuple[int, int]:
        if text.count("-") > 1:
            raise self.fail(f'{what} range "{text}" has more than one "-"')
        if "-" not in text:
            port = self._parse_port(text, what)
            return port, port
        first_text, last_text = text.split("-")
        first = self._parse_port(first_text, what)
        last = self._parse_port(last_text, what)
        if first == 0 or last == 0:
            raise self.fail(f"{what} range {text} includes port 0")
        if last < first:
            raise self.fail(f"{what} range {first}-{last} is reversed")
        return first, last

    def _expand(self, host_ip, host_range, container_range, proto) -> list[PortMapping]:
        c_first, c_last = container_range
        count = c_last - c_first + 1
        if host_range is None:
            return [PortMapping(host_ip, None, c_first + i, proto) for i in range(count)]
        h_first, h_last = host_range
        if h_first == 0:  # -p 0:80 (one container port: _parse_range refuses 0 in a range)
            return [PortMapping(host_ip, None, c_first + i, proto) for i in range(count)]
        if count == 1 and h_last > h_first:  # -p 8000-8010:80: one free port of the range
            return [PortMapping(host_ip, None, c_first, proto, (h_first, h_last))]
        if h_last - h_first + 1 != count:
            raise self.fail(
                f"host range {h_first}-{h_last} and container range {c_first}-{c_last} "
                "have different lengths")
        return [PortMapping(host_ip, h_first + i, c_first + i, proto) for i in range(count)]


def _overlap(a: PortMapping, b: PortMapping) -> bool:
    """Two fixed host ports clash if port+proto match and either listens on every address."""
    if a.host_port is None or b.host_port is None:
        return False  # picked later, from ports nobody else holds
    if (a.host_port, a.proto) != (b.host_port, b.proto):
        return False
    return a.host_ip is None or b.host_ip is None or a.host_ip == b.host_ip


def parse_all(specs: Iterable[str]) -> list[PortMapping]:
    """Parse every `-p` value and refuse two mappings of one host port.

    0.0.0.0 (None) clashes with any specific address for the same port and
    protocol, because a packet to that specific address would match both.
    """
    seen: list[tuple[PortMapping, str]] = []
    for spec in specs:
        for mapping in PortMapping.parse(spec):
            for other, other_spec in seen:
                if _overlap(mapping, other):
                    raise UsageError(
                        f"host port {mapping.host_port}/{mapping.proto} is published twice: "
                        f'"{other_spec}" and "{spec}"')
            seen.append((mapping, spec))
    return [mapping for mapping, _ in seen]


def host_port_in_use(host_ip: str | None, port: int, proto: str) -> bool:
    """Ask the kernel whether `port` is taken on `host_ip` (None = any address).

    We bind a throw-away socket. SO_REUSEADDR stays off for TCP so that a bind
    on 0.0.0.0 also collides with a listener on one specific address (and vice
    versa); the price is that a connection lingering in TIME_WAIT also counts
    as "in use", which errs on the safe side.

    An address that is not on this host is a user error, not "free".
    """
    if proto not in PROTOCOLS:
        raise UsageError(f'unknown protocol "{proto}" (expected tcp or udp)')
    kind = _socket.SOCK_STREAM if proto == "tcp" else _socket.SOCK_DGRAM
    address = host_ip or "0.0.0.0"
    sock = _socket.socket(_socket.AF_INET, kind | _socket.SOCK_CLOEXEC)
    try:
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 0)
        try:
            sock.bind((address, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            if exc.errno == errno.EADDRNOTAVAIL:
                raise UsageError(f"host IP {address} is not an address of this host") from None
            if exc.errno == errno.EACCES:
                # Unprivileged caller and a port below 1024: we cannot tell,
                # and publishing will fail later with its own clear error.
                return False
            raise SyscallError.from_oserror("bind", f"{address}:{port}/{proto}", exc) from None
    finally:
        sock.close()
    return False


def ephemeral_range(path: Path | None = None) -> tuple[int, int]:
    """The kernel's ephemeral port range: where auto-picked host ports come from.

    Picking there (as Docker does) keeps well-known and configured service
    ports free for the administrator.
    """
    try:
        first, last = (int(x) for x in (path or EPHEMERAL_RANGE_FILE).read_text().split())
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL_RANGE
    if not PORT_MIN <= first <= last <= PORT_MAX:
        return DEFAULT_EPHEMERAL_RANGE
    return first, last


def pick_free_port(host_ip: str | None, proto: str, taken: set[int],
                   span: tuple[int, int] | None = None) -> int:
    """A host port from the ephemeral range (or `span`, -p 8000-8010:80), not in
    `taken`, not in use on the host.

    The search starts at a random offset so that many `minirun run` processes
    picking at the same moment rarely land on the same port; the caller must
    still reserve it (under its lock) before relying on it, and pick again (with
    the port in `taken`) if that fails.
    """
    first, last = span or ephemeral_range()
    count = last - first + 1
    start = int.from_bytes(os.urandom(4), "little") % count
    for i in range(count):
        port = first + (start + i) % count
        if port in taken:
            continue
        if not host_port_in_use(host_ip, port, proto):
            return port
    raise Conflict(f"no free host port left in {first}-{last}/{proto} on {host_ip or '0.0.0.0'}")
