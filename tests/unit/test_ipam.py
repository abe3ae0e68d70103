"""Unit tests of the IP allocator: pure policy, the on-disk store, and real concurrency."""
from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from minirun import fsutil
from minirun.errors import Conflict, UsageError
from minirun.network.ipam import (Ipam, choose_free_subnet, next_candidates, parse_network,
                                  subnet_overlaps)

OWNER_A = "a" * 64
OWNER_B = "b" * 64


def make(tmp_path: Path, subnet="10.1.2.0/29", gateway="10.1.2.1") -> Ipam:
    return Ipam(tmp_path / "networks" / "testnet" / "ipam", subnet, gateway)


def write_lease(ipam: Ipam, ip: str, owner: str, boot: str) -> None:
    ipam.store_dir.mkdir(parents=True, exist_ok=True)
    (ipam.store_dir / ip).write_text(json.dumps({"owner": owner, "boot_id": boot}))


# -- pure helpers -----------------------------------------------------------

def test_next_candidates_skips_network_gateway_broadcast():
    assert list(next_candidates("10.1.2.0/29", "10.1.2.1", None, [])) == [
        "10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"]


def test_next_candidates_gateway_not_first():
    assert list(next_candidates("10.1.2.0/29", "10.1.2.6", None, [])) == [
        "10.1.2.1", "10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5"]


def test_next_candidates_round_robin_and_wrap():
    assert list(next_candidates("10.1.2.0/29", "10.1.2.1", "10.1.2.4", ["10.1.2.2"])) == [
        "10.1.2.5", "10.1.2.6", "10.1.2.3", "10.1.2.4"]


def test_next_candidates_last_at_end_wraps_to_start():
    assert next(next_candidates("10.1.2.0/29", "10.1.2.1", "10.1.2.6", [])) == "10.1.2.2"


@pytest.mark.parametrize("last", ["10.9.9.9", "garbage", "10.1.2.7", "10.1.2.0"])
def test_next_candidates_ignores_bad_cursor(last):
    assert next(next_candidates("10.1.2.0/29", "10.1.2.1", last, [])) == "10.1.2.2"


def test_next_candidates_slash30_has_one_address():
    assert list(next_candidates("10.1.2.0/30", "10.1.2.1", None, [])) == ["10.1.2.2"]


def test_next_candidates_is_lazy_on_a_big_subnet():
    # A /16 must not be materialised: taking one element is instant.
    gen = next_candidates("10.200.0.0/16", "10.200.0.1", "10.200.255.253", [])
    assert next(gen) == "10.200.255.254"
    assert next(gen) == "10.200.0.2"


def test_next_candidates_all_taken():
    taken = ["10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"]
    assert list(next_candidates("10.1.2.0/29", "10.1.2.1", None, taken)) == []


@pytest.mark.parametrize("subnet, gateway, why", [
    ("10.1.2.0/31", "10.1.2.1", "too small"),
    ("10.1.2.1/24", "10.1.2.1", "invalid subnet"),          # host bits set
    ("10.1.2.0/33", "10.1.2.1", "invalid subnet"),
    ("nonsense", "10.1.2.1", "invalid subnet"),
    ("fd00::/64", "fd00::1", "IPv6 is not supported yet"),
    ("10.1.2.0/24", "10.1.3.1", "gateway 10.1.3.1 is outside subnet 10.1.2.0/24"),
    ("10.1.2.0/24", "10.1.2.0", "network or broadcast"),
    ("10.1.2.0/24", "10.1.2.255", "network or broadcast"),
    ("10.1.2.0/24", "x", "invalid gateway"),
])
def test_parse_network_errors(subnet, gateway, why):
    with pytest.raises(UsageError, match=why):
        parse_network(subnet, gateway)


def test_subnet_overlaps():
    assert subnet_overlaps("10.88.0.0/16", "10.88.3.0/24")
    assert subnet_overlaps("10.88.3.0/24", "10.88.0.0/16")
    assert subnet_overlaps("172.17.0.0/16", "172.17.0.1/16")  # host bits allowed (routes)
    assert not subnet_overlaps("10.88.0.0/16", "10.89.0.0/16")
    assert not subnet_overlaps("172.17.0.0/16", "172.18.0.0/16")
    with pytest.raises(UsageError):
        subnet_overlaps("bad", "10.0.0.0/8")


def test_choose_free_subnet():
    candidates = ["172.17.0.0/16", "10.88.0.0/16", "10.89.0.0/24", "10.89.1.0/24"]
    in_use = ["172.17.0.0/16", "10.88.0.0/16", "10.89.0.128/25"]
    assert choose_free_subnet(candidates, in_use) == "10.89.1.0/24"
    assert choose_free_subnet(candidates, ["0.0.0.0/0"]) is None
    assert choose_free_subnet(candidates, []) == "172.17.0.0/16"
    assert choose_free_subnet([], []) is None


# -- the store ----------------------------------------------------------------

def test_allocate_round_robin_order(tmp_path):
    ipam = make(tmp_path)
    got = [ipam.allocate(f"c{i}") for i in range(5)]
    assert got == ["10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"]
    assert ipam.leases() == {ip: f"c{i}" for i, ip in enumerate(got)}


def test_on_disk_layout(tmp_path):
    ipam = make(tmp_path)
    ipam.allocate(OWNER_A)
    names = sorted(p.name for p in ipam.store_dir.iterdir())
    assert names == ["10.1.2.2", "last_reserved", "lock", f"owner-{OWNER_A}"]
    assert (ipam.store_dir / f"owner-{OWNER_A}").read_text().strip() == "10.1.2.2"
    assert json.loads((ipam.store_dir / "10.1.2.2").read_text()) == {
        "owner": OWNER_A, "boot_id": fsutil.boot_id()}
    assert (ipam.store_dir / "last_reserved").read_text().strip() == "10.1.2.2"


def test_freed_address_not_reused_at_once(tmp_path):
    ipam = make(tmp_path)
    first = ipam.allocate("c0")
    ipam.allocate("c1")
    ipam.release("c0")
    # The cursor moves on: .2 comes back only after the rest of the range.
    assert [ipam.allocate(f"n{i}") for i in range(4)] == [
        "10.1.2.4", "10.1.2.5", "10.1.2.6", first]


def test_cursor_survives_a_new_ipam_object(tmp_path):
    make(tmp_path).allocate("c0")
    make(tmp_path).release("c0")
    assert make(tmp_path).allocate("c1") == "10.1.2.3"


def test_wrap_around_reuses_freed_address(tmp_path):
    ipam = make(tmp_path)
    for i in range(5):
        ipam.allocate(f"c{i}")
    ipam.release("c1")  # 10.1.2.3
    assert ipam.allocate("new") == "10.1.2.3"  # after .6 the search wraps to .2, .3


def test_full_subnet(tmp_path):
    ipam = make(tmp_path)
    for i in range(5):
        ipam.allocate(f"c{i}")
    with pytest.raises(Conflict) as info:
        ipam.allocate("one-too-many")
    assert str(info.value) == "no free address left in 10.1.2.0/29 (network testnet)"


def test_allocate_is_idempotent_per_owner(tmp_path):
    ipam = make(tmp_path)
    ip = ipam.allocate(OWNER_A)
    assert ipam.allocate(OWNER_A) == ip
    assert ipam.allocate(OWNER_A, ip) == ip
    with pytest.raises(Conflict, match=f"container {OWNER_A[:12]} already holds {ip}"):
        ipam.allocate(OWNER_A, "10.1.2.5")
    assert ipam.leases() == {ip: OWNER_A}


def test_requested_address(tmp_path):
    ipam = make(tmp_path)
    assert ipam.allocate(OWNER_A, "10.1.2.5") == "10.1.2.5"
    # A static address does not move the round-robin cursor.
    assert ipam.allocate(OWNER_B) == "10.1.2.2"


@pytest.mark.parametrize("requested, error, message", [
    ("10.1.3.2", UsageError, "address 10.1.3.2 is outside subnet 10.1.2.0/29 of network testnet"),
    ("10.1.2.1", UsageError, "address 10.1.2.1 is the gateway of network testnet"),
    ("10.1.2.0", UsageError, "address 10.1.2.0 is the network or broadcast address of 10.1.2.0/29"),
    ("10.1.2.7", UsageError, "address 10.1.2.7 is the network or broadcast address of 10.1.2.0/29"),
    ("10.1.2", UsageError, 'invalid address "10.1.2": not an IPv4 address'),
    ("10.1.2.3", Conflict, f"address 10.1.2.3 is already in use by container {OWNER_A[:12]}"),
])
def test_requested_address_errors(tmp_path, requested, error, message):
    ipam = make(tmp_path)
    ipam.allocate(OWNER_A, "10.1.2.3")
    with pytest.raises(error) as info:
        ipam.allocate(OWNER_B, requested)
    assert str(info.value) == message
    assert ipam.leases() == {"10.1.2.3": OWNER_A}


def test_release_is_idempotent_and_owner_checked(tmp_path):
    ipam = make(tmp_path)
    a = ipam.allocate(OWNER_A)
    b = ipam.allocate(OWNER_B)
    ipam.release(OWNER_A, b)            # not A's: left alone
    assert ipam.leases() == {a: OWNER_A, b: OWNER_B}
    ipam.release(OWNER_A, a)
    ipam.release(OWNER_A, a)            # twice: fine
    ipam.release(OWNER_A)               # nothing left: fine
    ipam.release("never-seen")
    assert ipam.leases() == {b: OWNER_B}
    ipam.release(OWNER_B)
    assert ipam.leases() == {}


def test_release_on_a_missing_store(tmp_path):
    make(tmp_path).release(OWNER_A)


def test_release_reads_only_the_owners_lease(tmp_path, monkeypatch):
    """The owner file names the address: no scan of every lease (O(N) per teardown)."""
    ipam = make(tmp_path)
    a, b = ipam.allocate(OWNER_A), ipam.allocate(OWNER_B)
    (ipam.store_dir / f"owner-{OWNER_B}").write_text(a + "\n")  # pointing at A's lease
    monkeypatch.setattr(Ipam, "_read_leases", lambda self: pytest.fail("scanned"))
    ipam.release(OWNER_B)        # names A's lease: A's is left, B's owner file goes
    assert (ipam.store_dir / a).exists() and not (ipam.store_dir / f"owner-{OWNER_B}").exists()
    ipam.release(OWNER_A)
    assert not (ipam.store_dir / a).exists() and (ipam.store_dir / b).exists()


def test_release_without_owner_file_scans(tmp_path):
    """A start that died between claiming the lease and writing the owner file."""
    ipam = make(tmp_path)
    ipam.allocate(OWNER_A)
    b = ipam.allocate(OWNER_B)
    (ipam.store_dir / f"owner-{OWNER_A}").unlink()
    ipam.release(OWNER_A)
    assert ipam.leases() == {b: OWNER_B}


def test_stale_boot_lease_counts_as_free(tmp_path):
    ipam = make(tmp_path)
    for ip in ["10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"]:
        write_lease(ipam, ip, "before-reboot", "some-other-boot-id")
    assert ipam.leases() == {}
    assert ipam.allocate(OWNER_A) == "10.1.2.2"
    assert ipam.allocate(OWNER_B, "10.1.2.6") == "10.1.2.6"
    assert ipam.leases() == {"10.1.2.2": OWNER_A, "10.1.2.6": OWNER_B}


def test_half_written_lease_counts_as_free(tmp_path):
    ipam = make(tmp_path)
    ipam.store_dir.mkdir(parents=True)
    (ipam.store_dir / "10.1.2.2").write_text("")          # writer died mid-write
    (ipam.store_dir / "10.1.2.3").write_text("{not json")
    assert ipam.allocate(OWNER_A) == "10.1.2.2"
    assert ipam.allocate(OWNER_B) == "10.1.2.3"


def test_unrelated_files_ignored(tmp_path):
    ipam = make(tmp_path)
    ipam.store_dir.mkdir(parents=True)
    (ipam.store_dir / ".last_reserved.123.tmp").write_text("x")
    write_lease(ipam, "192.168.0.2", OWNER_B, fsutil.boot_id())  # other subnet
    assert ipam.allocate(OWNER_A) == "10.1.2.2"
    assert ipam.leases() == {"10.1.2.2": OWNER_A}


def test_reclaim(tmp_path):
    ipam = make(tmp_path)
    for owner in ["alive1", "dead1", "alive2", "dead2"]:
        ipam.allocate(owner)
    write_lease(ipam, "10.1.2.6", "old-boot-owner", "other-boot")
    asked = []

    def is_alive(owner):
        asked.append(owner)
        return owner.startswith("alive")

    freed = ipam.reclaim(is_alive)
    assert freed == ["10.1.2.3", "10.1.2.5", "10.1.2.6"]
    assert ipam.leases() == {"10.1.2.2": "alive1", "10.1.2.4": "alive2"}
    assert sorted(asked) == ["alive1", "alive2", "dead1", "dead2"]  # stale boot: not asked
    assert ipam.reclaim(is_alive) == []


def test_invalid_owner(tmp_path):
    with pytest.raises(UsageError):
        make(tmp_path).allocate("")
    with pytest.raises(UsageError):
        make(tmp_path).allocate("a/b")


def test_large_subnet(tmp_path):
    ipam = make(tmp_path, "10.200.0.0/16", "10.200.0.1")
    assert [ipam.allocate(f"c{i}") for i in range(3)] == ["10.200.0.2", "10.200.0.3", "10.200.0.4"]
    assert ipam.allocate("x", "10.200.255.254") == "10.200.255.254"


def test_network_name_in_messages(tmp_path):
    ipam = Ipam(tmp_path / "store", "10.1.2.0/30", "10.1.2.1", network="minirun")
    ipam.allocate("c0")
    with pytest.raises(Conflict, match=r"\(network minirun\)"):
        ipam.allocate("c1")


# -- real concurrency: separate processes, one store --------------------------

def _allocate_in_child(store: str, owner: str, barrier, results) -> None:
    barrier.wait()  # release every process at the same instant
    try:
        results.put((owner, Ipam(Path(store), "10.50.0.0/24", "10.50.0.1").allocate(owner)))
    except Exception as exc:  # noqa: BLE001 -- report any failure to the parent
        results.put((owner, f"error: {exc!r}"))


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_concurrent_processes_get_distinct_addresses(tmp_path, start_method):
    ctx = multiprocessing.get_context(start_method)
    n = 24
    store = tmp_path / "ipam"
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_allocate_in_child, args=(str(store), f"owner{i}", barrier, results))
             for i in range(n)]
    for p in procs:
        p.start()
    got = dict(results.get(timeout=60) for _ in range(n))
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    ips = list(got.values())
    assert not [ip for ip in ips if ip.startswith("error")], got
    assert len(set(ips)) == n
    # Under the lock the allocations are serial: exactly the first n addresses.
    assert sorted(ips, key=lambda s: int(s.rsplit(".", 1)[1])) == [f"10.50.0.{i}" for i in range(2, 2 + n)]
    assert Ipam(store, "10.50.0.0/24", "10.50.0.1").leases() == {ip: o for o, ip in got.items()}


def test_in_use_is_whether_any_lease_counts(tmp_path):
    ipam = make(tmp_path)
    assert not ipam.in_use()                       # no store at all
    write_lease(ipam, "10.1.2.3", OWNER_A, "another-boot")
    (ipam.store_dir / "10.9.9.9").write_text("{}")  # not of this subnet
    assert not ipam.in_use() and ipam.leases() == {}
    a = ipam.allocate(OWNER_B)
    assert ipam.in_use() and ipam.leases() == {a: OWNER_B}
    ipam.release(OWNER_B)
    assert not ipam.in_use()
