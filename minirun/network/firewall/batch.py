"""Group commit: the threads of one process that wait for the firewall lock to do the
same kind of work hand it to whichever of them gets there first, which does it all in
one go.

Why: `rm -f` of many containers tears them down in a thread pool, and every removal of
published ports takes the firewall lock, reads the table back (to delete only elements
provably ours, an O(N) listing) and commits one kernel transaction (a grace period,
~10 ms). Serialised, that is N listings and N commits; batched, the threads queued
behind the lock share one listing and one commit.

`Batcher.submit(item)` returns when `item` has been processed, raising what processing
it raised. The leader calls `work(items)`, which returns one exception (or None) per
item, in order. Only threads of one process meet here; other processes still meet at
the flock the work takes.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence


class _Ticket:
    __slots__ = ("item", "done", "error")

    def __init__(self, item):
        self.item, self.done, self.error = item, False, None


class Batcher:
    def __init__(self):
        self._mutex = threading.Lock()   # guards _pending
        self._leader = threading.Lock()  # held by the thread doing a batch
        self._pending: list[_Ticket] = []

    def submit(self, item, work: Callable[[Sequence], Sequence[BaseException | None]]):
        ticket = _Ticket(item)
        with self._mutex:
            self._pending.append(ticket)
        with self._leader:
            if not ticket.done:  # nobody took it while we waited: lead a batch
                with self._mutex:
                    batch, self._pending = self._pending, []
                try:
                    errors = work([t.item for t in batch])
                except BaseException as exc:  # the whole batch failed alike
                    errors = [exc] * len(batch)
                for t, err in zip(batch, errors):
                    t.error, t.done = err, True
        if ticket.error is not None:
            raise ticket.error


_batchers: dict[tuple, Batcher] = {}
_batchers_mutex = threading.Lock()


def batcher(*key) -> Batcher:
    """The one Batcher of this process for `key` (e.g. the lock path and the owner)."""
    with _batchers_mutex:
        return _batchers.setdefault(key, Batcher())
