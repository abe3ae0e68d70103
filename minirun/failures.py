"""What an undo step reports instead of raising: (operation, object, reason), and the two ways
teardown code runs undo steps (one at a time, or in threads so kernel waits overlap)."""
from __future__ import annotations

from collections.abc import Callable
from .tuples import NamedTuple


class Failure(NamedTuple):
    op: str
    obj: str
    reason: str

    def __str__(self) -> str:
        return f"{self.op} {self.obj}: {self.reason}" if self.obj else f"{self.op}: {self.reason}"


def attempt(op: str, obj: str, fn: Callable[[], object]) -> list[Failure]:
    """Run one undo; a failure is returned, not raised, so teardown goes on."""
    try:
        fn()
        return []
    except Exception as e:  # noqa: BLE001 - teardown must go on
        return [Failure(op, obj, str(e) or type(e).__name__)]


def in_parallel(jobs: list[Callable[[], list[Failure]]]) -> list[Failure]:
    """Run undo jobs in threads (their kernel waits overlap); every failure is kept."""
    import threading  # only when teardown overlaps its waits
    failures: list[Failure] = []

    def run(job):
        try:
            failures.extend(job())
        except Exception as e:  # noqa: BLE001
            failures.append(Failure("teardown", "", repr(e)))

    threads = [threading.Thread(target=run, args=(j,)) for j in jobs[1:]]
    for t in threads:
        t.start()
    if jobs:
        run(jobs[0])
    for t in threads:
        t.join()
    return failures
