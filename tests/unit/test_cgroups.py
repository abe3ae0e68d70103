"""Parsing and validating the resource flags (Docker's semantics), the conversions
between v1 shares and v2 weights, and the record's field."""
import pytest

from minirun import cgroups
from minirun.errors import UsageError
from minirun.spec import Resources, format_cpuset, parse_bytes, parse_resources


@pytest.mark.parametrize("text,n", [("64m", 64 << 20), ("64M", 64 << 20), ("1g", 1 << 30),
                                    ("1.5g", 3 << 29), ("512k", 512 << 10), ("64mb", 64 << 20),
                                    ("1048576", 1048576), ("100b", 100)])
def test_sizes(text, n):
    assert parse_bytes(text, "--memory") == n


@pytest.mark.parametrize("bad", ["", "m", "-5m", "64x", "1..2g", "64 m m"])
def test_bad_sizes(bad):
    with pytest.raises(UsageError, match="invalid --memory"):
        parse_bytes(bad, "--memory")


def test_memory_minimum_like_docker():
    with pytest.raises(UsageError, match="minimum memory limit allowed is 6MB"):
        parse_resources(memory="5m")
    assert parse_resources(memory="6m").memory == 6 << 20


def test_swap_default_is_twice_memory():
    r = parse_resources(memory="64m")
    assert (r.memory, r.memory_swap) == (64 << 20, 128 << 20)
    assert parse_resources(memory="64m", memory_swap="-1").memory_swap == -1
    assert parse_resources(memory="64m", memory_swap="100m").memory_swap == 100 << 20


def test_swap_checks():
    with pytest.raises(UsageError, match="needs --memory"):
        parse_resources(memory_swap="100m")
    with pytest.raises(UsageError, match="must not be less than --memory"):
        parse_resources(memory="100m", memory_swap="50m")


def test_cpus():
    assert parse_resources(cpus="0.5", ncpus=2).cpu_quota == 50000
    assert parse_resources(cpus="2", ncpus=2).cpu_quota == 200000
    for bad in ("3", "0.001", "-1"):
        with pytest.raises(UsageError, match="range of CPUs is from 0.01 to 2.00"):
            parse_resources(cpus=bad, ncpus=2)
    with pytest.raises(UsageError, match="expected a number"):
        parse_resources(cpus="half")


def test_shares_and_weight():
    assert parse_resources(cpu_shares="1024").cpu_shares == 1024
    assert parse_resources(cpu_weight="100").cpu_weight == 100
    for bad in ("1", "262145", "x"):
        with pytest.raises(UsageError):
            parse_resources(cpu_shares=bad)
    for bad in ("0", "10001"):
        with pytest.raises(UsageError, match="from 1 to 10000"):
            parse_resources(cpu_weight=bad)
    with pytest.raises(UsageError, match="give one"):
        parse_resources(cpu_shares="512", cpu_weight="100")


def test_conversions():
    # runc's: 2 -> 1, 262144 -> 10000, Docker's default 1024 -> 39
    assert cgroups.shares_to_weight(2) == 1
    assert cgroups.shares_to_weight(262144) == 10000
    assert cgroups.shares_to_weight(1024) == 39
    assert cgroups.weight_to_shares(1) == 2
    assert cgroups.weight_to_shares(10000) == 262144
    assert cgroups.weight_to_shares(100) == 2597  # v2's default weight


def test_pids_limit():
    assert parse_resources(pids_limit="20").pids_limit == 20
    assert parse_resources(pids_limit="-1").pids_limit is None
    assert parse_resources(pids_limit="0").pids_limit is None
    with pytest.raises(UsageError):
        parse_resources(pids_limit="-2")
    with pytest.raises(UsageError, match="expected an integer"):
        parse_resources(pids_limit="many")


def test_cpuset():
    assert parse_resources(cpuset_cpus="0", available={0, 1}).cpuset_cpus == "0"
    assert parse_resources(cpuset_cpus="1,0", available={0, 1}).cpuset_cpus == "0-1"
    with pytest.raises(UsageError, match=r"not available \(CPU 5\), available: 0-1"):
        parse_resources(cpuset_cpus="5", available={0, 1})
    for bad in ("a", "1-0", "0,,1", "-1"):
        with pytest.raises(UsageError, match="expected a list"):
            parse_resources(cpuset_cpus=bad, available={0, 1})
    assert format_cpuset({0, 1, 2, 4, 6, 7}) == "0-2,4,6-7"


def test_nothing_asked_is_nothing():
    assert not Resources().any()
    assert parse_resources() == Resources()


def test_record_round_trip(tmp_path):
    from minirun.record import Config, Container
    from minirun.state import Paths
    res = parse_resources(memory="64m", pids_limit="10", cpuset_cpus="0", available={0})
    cfg = Config(rootfs="/r", command=("true",), hostname="h", env={}, resources=res)
    c = Container(Paths(tmp_path, tmp_path), "a" * 64, "n", cfg, oom_killed=True)
    d = c.to_json()
    assert d["config"]["resources"]["memory"] == 64 << 20 and d["oom_killed"] is True
    back = Container.from_json(c.paths, d)
    assert back.config.resources == res and back.oom_killed is True
    # a record written before these fields existed still loads
    del d["config"]["resources"], d["oom_killed"]
    old = Container.from_json(c.paths, d)
    assert old.config.resources == Resources() and old.oom_killed is False
