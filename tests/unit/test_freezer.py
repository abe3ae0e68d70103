"""pause/unpause's freezer on cgroup v2 against a FAKE cgroupfs (this machine is v1; the
v1 freezer runs for real in tests/e2e/test_lifeverbs.py)."""
import pytest

from minirun import cgroups
from minirun.cgroups.v2 import V2Group
from minirun.errors import MinirunError


@pytest.fixture
def group(tmp_path, monkeypatch):
    d = tmp_path / "minirun-t" / ("ab" * 32)
    d.mkdir(parents=True)
    (d / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    (d / "cgroup.freeze").write_text("0\n")
    g = V2Group([[["memory"], str(d)]])
    monkeypatch.setattr(cgroups, "group", lambda c: g)
    return d


def kernel_follows(d):
    """What the kernel does once every task stopped: cgroup.events follows cgroup.freeze."""
    frozen = (d / "cgroup.freeze").read_text().strip()
    (d / "cgroup.events").write_text(f"populated 1\nfrozen {frozen}\n")


def test_freeze_writes_cgroup_freeze_and_waits_for_the_event(group, monkeypatch):
    real = V2Group.set_frozen

    def set_frozen(self, on):
        real(self, on)
        kernel_follows(group)

    monkeypatch.setattr(V2Group, "set_frozen", set_frozen)
    cgroups.freeze(object(), True)
    assert (group / "cgroup.freeze").read_text() == "1"
    assert cgroups.group(None).frozen() is True
    cgroups.freeze(object(), False)
    assert (group / "cgroup.freeze").read_text() == "0"
    assert cgroups.group(None).frozen() is False


def test_a_freeze_that_never_completes_is_undone(group):
    with pytest.raises(MinirunError, match="did not freeze"):
        cgroups.freeze(object(), True, timeout=0.05)
    assert (group / "cgroup.freeze").read_text() == "0"  # thawed again


def test_no_freezer(group):
    (group / "cgroup.events").unlink()
    with pytest.raises(MinirunError, match="freezer"):
        cgroups.freeze(object(), True)
