"""Unit tests of -p parsing, conflict checks and host port probing (loopback only)."""
from __future__ import annotations

import socket

import pytest

from minirun.errors import Conflict, UsageError
from minirun.network import ports
from minirun.network.ports import PortMapping, host_port_in_use, parse_all, pick_free_port

M = PortMapping


@pytest.mark.parametrize("spec, expected", [
    ("80", [M(None, None, 80, "tcp")]),
    ("8080:80", [M(None, 8080, 80, "tcp")]),
    ("127.0.0.1:8080:80", [M("127.0.0.1", 8080, 80, "tcp")]),
    ("127.0.0.1::80", [M("127.0.0.1", None, 80, "tcp")]),
    ("0.0.0.0:8080:80", [M(None, 8080, 80, "tcp")]),
    (":8080:80", [M(None, 8080, 80, "tcp")]),
    ("8080-8081:80-81", [M(None, 8080, 80, "tcp"), M(None, 8081, 81, "tcp")]),
    ("80-82", [M(None, None, 80, "tcp"), M(None, None, 81, "tcp"), M(None, None, 82, "tcp")]),
    ("53:53/udp", [M(None, 53, 53, "udp")]),
    ("53/udp", [M(None, None, 53, "udp")]),
    ("8080:80/tcp", [M(None, 8080, 80, "tcp")]),
    ("10.0.0.1:1-2:3-4/udp", [M("10.0.0.1", 1, 3, "udp"), M("10.0.0.1", 2, 4, "udp")]),
    ("65535:1", [M(None, 65535, 1, "tcp")]),
    ("90:90-90", [M(None, 90, 90, "tcp")]),
])
def test_parse_good(spec, expected):
    assert PortMapping.parse(spec) == expected


@pytest.mark.parametrize("spec, why", [
    ("abc:80", 'host port "abc" is not a number'),
    ("80:abc", 'container port "abc" is not a number'),
    ("8080:80/foo", 'unknown protocol "foo"'),
    ("8080:80/TCP", 'unknown protocol "TCP"'),
    ("8080:80/", 'unknown protocol ""'),
    ("/tcp", "no port before the protocol"),
    ("1.2.3.4.5:80:80", 'host IP "1.2.3.4.5" is not a valid IPv4 address'),
    ("localhost:80:80", 'host IP "localhost" is not a valid IPv4 address'),
    ("70000:80", "host port 70000 is out of range 1-65535"),
    ("8080:70000", "container port 70000 is out of range 1-65535"),
    ("8080:0", "container port 0 is out of range 1-65535"),
    ("8080-8081:80-82", "host range 8080-8081 and container range 80-82 have different lengths"),
    ("8080:80-81", "host range 8080-8080 and container range 80-81 have different lengths"),
    ("81-80", "container port range 81-80 is reversed"),
    ("8081-8080:80-81", "host port range 8081-8080 is reversed"),
    ("80-", "container port is empty"),
    ("-80", "container port is empty"),
    ("1-2-3", 'container port range "1-2-3" has more than one "-"'),
    ("", "empty"),
    ("   ", "empty"),
    (" 80", "contains spaces"),
    ("+80", 'container port "+80" is not a number'),
    ("8_0", 'container port "8_0" is not a number'),
    ("1:2:3:4", "too many colons"),
    ("8080:", "container port is empty"),
    (":80", "host port is empty"),
    ("[::1]:8080:80", "IPv6 is not supported yet"),
    ("::1:8080:80", "IPv6 is not supported yet"),
    ("fe80::1:8080:80", "IPv6 is not supported yet"),
])
def test_parse_bad(spec, why):
    with pytest.raises(UsageError) as info:
        PortMapping.parse(spec)
    message = str(info.value)
    assert message.startswith(f'invalid port spec "{spec}": ')
    assert why in message
    assert "\n" not in message


def test_parse_all_concatenates_in_order():
    assert parse_all(["8080:80", "53:53/udp", "90"]) == [
        M(None, 8080, 80, "tcp"), M(None, 53, 53, "udp"), M(None, None, 90, "tcp")]


@pytest.mark.parametrize("specs", [
    ["8080:80", "8080:81"],
    ["8080:80", "8080:80"],
    ["127.0.0.1:8080:80", "8080:81"],           # all addresses vs. one address
    ["8080:81", "127.0.0.1:8080:80"],
    ["0.0.0.0:8080:80", "10.0.0.1:8080:80"],
    ["10.0.0.1:8080:80", "10.0.0.1:8080:81"],
    ["8080-8082:80-82", "8082:90"],              # overlap inside a range
    ["53:53/udp", "53:54/udp"],
])
def test_parse_all_refuses_one_host_port_twice(specs):
    with pytest.raises(UsageError, match=r"host port \d+/(tcp|udp) is published twice: "):
        parse_all(specs)


@pytest.mark.parametrize("specs", [
    ["8080:80", "8080:80/udp"],                  # different protocols
    ["127.0.0.1:8080:80", "10.0.0.1:8080:80"],   # different specific addresses
    ["80", "80"],                                # host ports picked later, distinct
    ["8080:80", "8081:80"],                      # one container port, two host ports
])
def test_parse_all_allows(specs):
    assert len(parse_all(specs)) == 2


def test_parse_all_error_quotes_both_specs():
    with pytest.raises(UsageError) as info:
        parse_all(["127.0.0.1:8080:80", "8080:81"])
    assert str(info.value) == ('host port 8080/tcp is published twice: '
                               '"127.0.0.1:8080:80" and "8080:81"')


@pytest.fixture
def tcp_listener():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_host_port_in_use_tcp(tcp_listener):
    assert host_port_in_use("127.0.0.1", tcp_listener, "tcp")
    # A bind on every address collides with a listener on one of them.
    assert host_port_in_use(None, tcp_listener, "tcp")


def test_host_port_in_use_udp():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert host_port_in_use("127.0.0.1", port, "udp")
    assert not host_port_in_use("127.0.0.1", port, "udp")


def test_host_port_free_after_close():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert not host_port_in_use("127.0.0.1", port, "tcp")


def test_host_port_in_use_foreign_address():
    with pytest.raises(UsageError, match="is not an address of this host"):
        host_port_in_use("192.0.2.77", 8080, "tcp")  # TEST-NET-1, never local


def test_pick_free_port_avoids_taken_and_busy(monkeypatch, tmp_path, tcp_listener):
    # A tiny ephemeral range: [busy, taken, free].
    taken_port, free_port = tcp_listener + 1, tcp_listener + 2
    range_file = tmp_path / "range"
    range_file.write_text(f"{tcp_listener}\t{free_port}\n")
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE_FILE", range_file)
    monkeypatch.setattr(ports, "host_port_in_use",
                        lambda ip, port, proto: port == tcp_listener)
    for _ in range(20):  # random start: every start must still land on the free one
        assert pick_free_port("127.0.0.1", "tcp", {taken_port}) == free_port


def test_pick_free_port_none_left(monkeypatch, tmp_path):
    range_file = tmp_path / "range"
    range_file.write_text("40000 40001\n")
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE_FILE", range_file)
    with pytest.raises(Conflict, match="no free host port left in 40000-40001/tcp"):
        pick_free_port("127.0.0.1", "tcp", {40000, 40001})


def test_pick_free_port_real_host():
    first, last = ports.ephemeral_range()
    port = pick_free_port("127.0.0.1", "tcp", set())
    assert first <= port <= last
    assert not host_port_in_use("127.0.0.1", port, "tcp")


def test_ephemeral_range_fallback(tmp_path):
    assert ports.ephemeral_range(tmp_path / "missing") == ports.DEFAULT_EPHEMERAL_RANGE
