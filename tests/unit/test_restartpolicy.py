"""--restart: Docker's policies and backoff, as pure decisions."""
import pytest

from minirun.errors import UsageError
from minirun.restartpolicy import next_delay, parse, should_restart


@pytest.mark.parametrize("value,want", [("no", ("no", 0)), ("always", ("always", 0)),
                                        ("unless-stopped", ("unless-stopped", 0)),
                                        ("on-failure", ("on-failure", 0)),
                                        ("on-failure:3", ("on-failure", 3))])
def test_parse(value, want):
    assert parse(value) == want


@pytest.mark.parametrize("value", ["sometimes", "always:2", "on-failure:0", "on-failure:x",
                                   "on-failure:", ""])
def test_parse_refuses(value):
    with pytest.raises(UsageError):
        parse(value)


def test_should_restart():
    assert not should_restart("no", 0, 1, 0, False)
    assert should_restart("always", 0, 0, 5, False)
    assert should_restart("unless-stopped", 0, 137, 0, False)
    assert not should_restart("always", 0, 0, 0, True)  # stopped by the user
    assert not should_restart("always", 0, None, 0, False)  # never ran / lost status
    assert should_restart("on-failure", 0, 1, 100, False)
    assert not should_restart("on-failure", 0, 0, 0, False)
    assert should_restart("on-failure", 2, 1, 1, False)
    assert not should_restart("on-failure", 2, 1, 2, False)


def test_backoff_doubles_and_starts_over_after_ten_seconds_up():
    d = next_delay(0.0, 0.5)
    assert d == 0.1
    for want in (0.2, 0.4, 0.8):
        d = next_delay(d, 0.5)
        assert d == pytest.approx(want)
    assert next_delay(d, 10.0) == 0.1
    assert next_delay(50.0, 1.0) == 60.0  # at most a minute
