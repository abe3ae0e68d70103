"""`minirun kill -s`: which signals are taken (Docker's forms) and which are refused."""
import signal

import pytest

from minirun.cli import _parse_signal
from minirun.errors import UsageError


@pytest.mark.parametrize("sig,num", [
    ("KILL", 9), ("SIGKILL", 9), ("kill", 9), ("sigKill", 9), ("9", 9), ("TERM", 15),
    ("1", 1), (str(int(signal.SIGRTMAX)), int(signal.SIGRTMAX)), ("HUP", 1),
    ("RTMIN", int(signal.SIGRTMIN)), ("SIGRTMIN+3", int(signal.SIGRTMIN) + 3),
    ("rtmax-1", int(signal.SIGRTMAX) - 1),
])
def test_valid_signals(sig, num):
    assert _parse_signal(sig) == num


@pytest.mark.parametrize("sig", ["0", "99", str(int(signal.SIGRTMAX) + 1), "-1", "-9", "",
                                 "FOO", "SIGFOO", "SIG", "9x", " KILL", "KILL ", "\u00b2",
                                 "RTMIN-1", "RTMAX+1", "RTMIN+99", "RTMAX-99", "SIG_DFL",
                                 "99999999999999999999999"])
def test_invalid_signals_are_one_line_usage_errors(sig):
    with pytest.raises(UsageError, match="invalid signal") as e:
        _parse_signal(sig)
    assert "\n" not in str(e.value) and repr(sig) in str(e.value)
