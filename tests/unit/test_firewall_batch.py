"""The group commit of firewall removals (network/firewall/batch.py): threads queued
behind a batch in progress are done together by the next leader, each gets its own
result. Deterministic: the first batch is held on an Event until the others queue."""
from __future__ import annotations

import struct
import threading

import pytest

from minirun.errors import MinirunError
from minirun.network.firewall import get_firewall
from minirun.network.firewall import nftables as nft
from minirun.network.firewall.base import CommandFailed, NetworkInfo, PortForward
from minirun.network.firewall.batch import Batcher

from test_firewall_render import (CID, FWD, LIST, LIST_TEXT, NET, FakeRunner, g,
                                  nft_text_listing)


def _wait_pending(b: Batcher, n: int) -> None:
    while True:  # no timing: the queued threads are counted
        with b._mutex:
            if len(b._pending) == n:
                return
        threading.Event().wait(0.001)


def test_alone_does_its_own_work():
    b = Batcher()
    batches = []
    b.submit("a", lambda items: batches.append(list(items)) or [None])
    assert batches == [["a"]]


def test_queued_items_go_in_one_batch_with_their_own_errors():
    b = Batcher()
    batches, release = [], threading.Event()

    def work(items):
        batches.append(list(items))
        if items == ["first"]:
            release.wait()
        return [ValueError(i) if i == "bad" else None for i in items]

    results = {}

    def submit(item):
        try:
            b.submit(item, work)
            results[item] = "ok"
        except ValueError as exc:
            results[item] = f"error {exc}"

    first = threading.Thread(target=submit, args=("first",))
    first.start()
    while not batches:
        threading.Event().wait(0.001)
    others = [threading.Thread(target=submit, args=(i,)) for i in ("x", "bad", "y")]
    for t in others:
        t.start()
    _wait_pending(b, 3)
    release.set()
    for t in [first, *others]:
        t.join()
    assert batches[0] == ["first"] and sorted(batches[1]) == ["bad", "x", "y"]
    assert len(batches) == 2
    assert results == {"first": "ok", "x": "ok", "y": "ok", "bad": "error bad"}


def test_a_failing_batch_fails_each_item():
    b = Batcher()

    def work(items):
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        b.submit(1, work)


FWD_A = [PortForward("tcp", None, 8080, "10.88.5.2", 80)]
FWD_B = [PortForward("tcp", None, 8081, "10.88.5.3", 80)]
FWD_C = [PortForward("tcp", None, 8082, "10.88.5.4", 80)]


def test_nft_removes_several_containers_with_one_read_and_one_transaction(tmp_path):
    """Only elements present and tagged with this owner and the container's id go;
    another owner's element at a key of ours stays."""
    listing = nft_text_listing(containers=(("a", FWD_A), ("b", FWD_B), ("other:c", FWD_C)))
    r = FakeRunner(nft_answers={LIST_TEXT: listing})
    fw = get_firewall("nftables", runner=r, lock_path=tmp_path / "lock")
    assert fw._remove_containers([("a", NET, FWD_A), ("b", NET, FWD_B),
                                  ("c", NET, FWD_C)]) == [None, None, None]
    assert [c[1] for c in r.calls if c[1] == LIST] == [LIST]  # one read for the three
    assert [c[1] for c in r.mutations()] == [g("""
        delete element ip minirun ports_tcp { 8080 }
        delete element ip minirun ports_tcp { 8081 }
    """)]


def test_nft_a_failing_batch_is_retried_one_by_one(tmp_path):
    listing = nft_text_listing(containers=(("a", FWD_A), ("b", FWD_B)))
    del_a = "delete element ip minirun ports_tcp { 8080 }\n"
    del_b = "delete element ip minirun ports_tcp { 8081 }\n"
    busy = CommandFailed("Could not process rule: Device or resource busy")
    r = FakeRunner(nft_answers={LIST_TEXT: listing, del_a + del_b: busy, del_a: busy})
    fw = get_firewall("nftables", runner=r, lock_path=tmp_path / "lock")
    errors = fw._remove_containers([("a", NET, FWD_A), ("b", NET, FWD_B)])
    assert isinstance(errors[0], MinirunError) and "remove container a:" in str(errors[0])
    assert errors[1] is None
    assert [c[1] for c in r.mutations()] == [del_a + del_b, del_a, del_b]


# `nft list table ip minirun` as nft 1.0.6 printed it (captured from the kernel): two
# owners, an element without a comment, a key inside another's comment, a wrapped line.
REAL_LISTING = g("""
    table ip minirun {
    \tset bridges {
    \t\ttype ifname
    \t\telements = { "minirun0" comment "default:minirun" }
    \t}

    \tset subnets {
    \t\ttype ipv4_addr
    \t\tflags interval
    \t\telements = { 10.88.5.0/24 comment "default:minirun" }
    \t}

    \tset routed_tcp {
    \t\ttype ipv4_addr . inet_service
    \t\telements = { 10.88.5.2 . 80 comment "default:abc123",
    \t\t\t     10.88.5.3 . 80 comment "other:zzz" }
    \t}

    \tset routed_udp {
    \t\ttype ipv4_addr . inet_service
    \t}

    \tmap hostports_tcp {
    \t\ttype ipv4_addr . inet_service : ipv4_addr . inet_service
    \t\telements = { 127.0.0.1 . 8080 comment "admin, 8080 comment x" : 10.88.5.7 . 80 }
    \t}

    \tmap ports_tcp {
    \t\ttype inet_service : ipv4_addr . inet_service
    \t\telements = { 8080 comment "default:abc123" : 10.88.5.2 . 80, 8081 comment "other:zzz" : 10.88.5.3 . 80, 9090 : 10.88.5.9 . 90, 18080 comment "default:abc123x" : 10.88.5.4 . 80 }
    \t}

    \tmap hostports_udp {
    \t\ttype ipv4_addr . inet_service : ipv4_addr . inet_service
    \t\telements = { 127.0.0.1 . 5353 comment "default:abc123" : 10.88.5.2 . 53 }
    \t}

    \tchain user {
    \t}
    }
""")


def test_container_elements_of_a_real_listing():
    E = nft.Element
    mine = FWD + [PortForward("tcp", None, 8081, "10.88.5.3", 80),      # another owner's
                  PortForward("tcp", None, 9090, "10.88.5.9", 90),      # no comment
                  PortForward("tcp", None, 80, "10.88.5.9", 90),        # absent
                  PortForward("tcp", "127.0.0.1", 8080, "10.88.5.7", 80)]
    state = nft.container_elements(REAL_LISTING, mine)
    assert state.exists
    assert state.elements == {
        "ports_tcp": [E("8080", "default:abc123"), E("8081", "other:zzz")],
        "hostports_udp": [E("127.0.0.1 . 5353", "default:abc123")],
        "hostports_tcp": [E("127.0.0.1 . 8080", "admin, 8080 comment x")],
        "routed_tcp": [E("10.88.5.2 . 80", "default:abc123"), E("10.88.5.3 . 80", "other:zzz")],
        "routed_udp": []}
    # not 18080 (tagged abc123x) for 8080, nor a key inside another element's comment
    assert nft.container_elements(REAL_LISTING, [PortForward("tcp", None, 18080, "10.88.5.4", 80)]
                                  ).elements["ports_tcp"] == [E("18080", "default:abc123x")]
    assert not nft.container_elements("", FWD).exists
    # the container's own elements go, nothing of another owner or container
    assert nft.render_remove_container(CID, NET, mine, state) == g("""
        delete element ip minirun ports_tcp { 8080 }
        delete element ip minirun hostports_udp { 127.0.0.1 . 5353 }
        delete element ip minirun routed_tcp { 10.88.5.2 . 80 }
    """)


class LookupRunner(FakeRunner):
    """A runner that looks keys up in a fake kernel: {(set, key): comment}."""

    def __init__(self, kernel, fail=False, **kw):
        super().__init__(**kw)
        self.kernel, self.fail, self.lookups = kernel, fail, []

    def element_comments(self, table, wanted):
        self.lookups.append((table, list(wanted)))
        if self.fail:
            raise CommandFailed("element lookup: netlink socket: Operation not permitted")
        return {sk: self.kernel[sk] for sk in wanted if sk in self.kernel}


def test_nft_removal_looks_keys_up_instead_of_listing(tmp_path):
    kernel = {("ports_tcp", "8080"): "default:a", ("ports_tcp", "8081"): "other:b",
              ("ports_tcp", "8082"): None}
    r = LookupRunner(kernel)
    fw = get_firewall("nftables", runner=r, lock_path=tmp_path / "lock")
    assert fw._remove_containers([("a", NET, FWD_A), ("b", NET, FWD_B),
                                  ("c", NET, FWD_C)]) == [None, None, None]
    assert r.lookups == [("minirun", [("ports_tcp", "8080"), ("ports_tcp", "8081"),
                                      ("ports_tcp", "8082")])]
    assert [c[1] for c in r.calls if c[1].startswith("list")] == []
    assert [c[1] for c in r.mutations()] == ["delete element ip minirun ports_tcp { 8080 }\n"]


def test_nft_removal_lists_when_the_lookup_fails_or_the_network_is_routed(tmp_path):
    listing = nft_text_listing(containers=(("a", FWD_A),))
    r = LookupRunner({}, fail=True, nft_answers={LIST_TEXT: listing})
    fw = get_firewall("nftables", runner=r, lock_path=tmp_path / "lock")
    assert fw._remove_containers([("a", NET, FWD_A)]) == [None]
    assert [c[1] for c in r.mutations()] == ["delete element ip minirun ports_tcp { 8080 }\n"]
    routed = NetworkInfo("r", "mrr", "10.88.7.0/24", "10.88.7.1", mode="routed")
    r = LookupRunner({("ports_tcp", "8080"): "default:a"}, nft_answers={LIST_TEXT: listing})
    fw = get_firewall("nftables", runner=r, lock_path=tmp_path / "lock")
    fw._remove_containers([("a", routed, FWD_A)])
    assert r.lookups == [] and [c[1] for c in r.calls if c[1] == LIST] == [LIST]


def test_nfquery_messages():
    from minirun.network.firewall import _nfquery as q
    assert q.key_bytes("8080") == b"\x1f\x90"
    assert q.key_bytes("127.0.0.1 . 8080") == b"\x7f\0\0\x01\x1f\x90\0\0"
    req = q.request("minirun", "ports_tcp", "8080", seq=7)
    size, mtype, flags, seq, _ = struct.unpack_from("=IHHII", req)
    assert (size, mtype, flags, seq) == (len(req), 0x0a0d, 0x5, 7)
    assert b"minirun\0" in req and b"ports_tcp\0" in req and b"\x1f\x90" in req
    # an answer's payload: nfgenmsg, then the element with its user data (the comment)
    udata = bytes([0, 10]) + b"default:a\0"
    elem = q._attr(q.LIST_ELEM | q.NLA_F_NESTED,
                   q._attr(q.ELEM_KEY | q.NLA_F_NESTED, q._attr(q.DATA_VALUE, b"\x1f\x90"))
                   + q._attr(q.ELEM_USERDATA, udata))
    payload = b"\x02\0\0\0" + q._attr(q.LIST_TABLE, b"minirun\0") + \
        q._attr(q.LIST_ELEMENTS | q.NLA_F_NESTED, elem)
    assert q.comment_of(payload) == "default:a"
    no_comment = b"\x02\0\0\0" + q._attr(q.LIST_ELEMENTS | q.NLA_F_NESTED, q._attr(
        q.LIST_ELEM | q.NLA_F_NESTED, q._attr(q.ELEM_KEY | q.NLA_F_NESTED, b"")))
    assert q.comment_of(no_comment) is None
