"""The group commit of firewall removals (network/firewall/batch.py): threads queued
behind a batch in progress are done together by the next leader, each gets its own
result. Deterministic: the first batch is held on an Event until the others queue."""
from __future__ import annotations

import threading

import pytest

from minirun.errors import MinirunError
from minirun.network.firewall import get_firewall
from minirun.network.firewall.base import CommandFailed, PortForward
from minirun.network.firewall.batch import Batcher

from test_firewall_render import LIST, NET, FakeRunner, g, nft_listing


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
    listing = nft_listing(containers=(("a", FWD_A), ("b", FWD_B), ("other:c", FWD_C)))
    r = FakeRunner(nft_answers={LIST: listing})
    fw = get_firewall("nftables", runner=r, lock_path=tmp_path / "lock")
    assert fw._remove_containers([("a", NET, FWD_A), ("b", NET, FWD_B),
                                  ("c", NET, FWD_C)]) == [None, None, None]
    assert [c[1] for c in r.calls if c[1] == LIST] == [LIST]
    assert [c[1] for c in r.mutations()] == [g("""
        delete element ip minirun ports_tcp { 8080 }
        delete element ip minirun ports_tcp { 8081 }
    """)]


def test_nft_a_failing_batch_is_retried_one_by_one(tmp_path):
    listing = nft_listing(containers=(("a", FWD_A), ("b", FWD_B)))
    del_a = "delete element ip minirun ports_tcp { 8080 }\n"
    del_b = "delete element ip minirun ports_tcp { 8081 }\n"
    busy = CommandFailed("Could not process rule: Device or resource busy")
    r = FakeRunner(nft_answers={LIST: listing, del_a + del_b: busy, del_a: busy})
    fw = get_firewall("nftables", runner=r, lock_path=tmp_path / "lock")
    errors = fw._remove_containers([("a", NET, FWD_A), ("b", NET, FWD_B)])
    assert isinstance(errors[0], MinirunError) and "remove container a:" in str(errors[0])
    assert errors[1] is None
    assert [c[1] for c in r.mutations()] == [del_a + del_b, del_a, del_b]
