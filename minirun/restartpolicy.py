"""`--restart no|on-failure[:N]|always|unless-stopped`: Docker's restart policies, as pure
decisions (restart.py acts on them; the monitor's `_cleanup` asks).

    no              never
    on-failure[:N]  when the exit code is not 0; at most N restarts (N > 0; no N: no limit)
    always          whatever the code
    unless-stopped  the same here: minirun has no daemon whose own restart would tell
                    the two apart

A container stopped by the user (stop, kill, rm -f) is not restarted until it is
started by hand. Between restarts the delay starts at 100 ms and doubles (at most
1 minute); it starts over once the container stayed up for 10 s.
"""
from __future__ import annotations

import os

from .errors import UsageError

POLICIES = ("no", "on-failure", "always", "unless-stopped")
FIRST_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0


def parse(value: str) -> tuple[str, int]:
    name, colon, count = value.partition(":")
    if name not in POLICIES:
        raise UsageError(f"invalid --restart {value!r}: no, on-failure[:N], always or "
                         "unless-stopped")
    if not colon:
        return name, 0
    if name != "on-failure":
        raise UsageError(f"invalid --restart {value!r}: only on-failure takes a count")
    if not count.isdigit() or int(count) < 1:
        raise UsageError(f"invalid --restart {value!r}: the count is a number from 1")
    return name, int(count)


def should_restart(policy: str, max_count: int, code: int | None, count: int,
                   manually_stopped: bool) -> bool:
    if manually_stopped or code is None or policy == "no":
        return False
    if policy == "on-failure":
        return code != 0 and (max_count == 0 or count < max_count)
    return policy in ("always", "unless-stopped")


def next_delay(previous: float, ran_for: float | None) -> float:
    """The wait before the next restart: 100 ms, doubled after each quick exit, from the
    start again after 10 s up. MINIRUN_RESTART_DELAY_SCALE (tests) scales it."""
    if not previous or (ran_for is not None and ran_for >= RESET_AFTER):
        delay = FIRST_DELAY
    else:
        delay = min(previous * 2, MAX_DELAY)
    return delay


def scaled(delay: float) -> float:
    try:
        return delay * float(os.environ.get("MINIRUN_RESTART_DELAY_SCALE", "1"))
    except ValueError:
        return delay
