import pytest

from minirun.errors import Conflict
from minirun.network.reservations import PortReservations


def test_reserve_release_and_conflict(tmp_path):
    r = PortReservations(tmp_path / "ports")
    r.reserve("a" * 64, "tcp", 8080, lambda cid: True)
    r.reserve("a" * 64, "tcp", 8080, lambda cid: True)  # again: fine
    r.reserve("b" * 64, "udp", 8080, lambda cid: True)  # another protocol: fine
    with pytest.raises(Conflict, match="8080/tcp is already published by container aaaaaaaaaaaa"):
        r.reserve("b" * 64, "tcp", 8080, lambda cid: True)
    r.release("b" * 64, "tcp", 8080)  # not its reservation: kept
    assert r.owner("tcp", 8080) == "a" * 64
    r.release("a" * 64, "tcp", 8080)
    assert r.owner("tcp", 8080) is None
    assert r.taken() == {8080}  # the udp one


def test_a_dead_owner_is_taken_over(tmp_path):
    r = PortReservations(tmp_path / "ports")
    r.reserve("a" * 64, "tcp", 9000, lambda cid: True)
    r.reserve("b" * 64, "tcp", 9000, lambda cid: cid != "a" * 64)
    assert r.owner("tcp", 9000) == "b" * 64
