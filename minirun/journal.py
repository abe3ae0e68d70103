"""The journal: every side effect made for a container, recorded before it is made.

    with journal.step(c, "net.veth", name=..., mac=...) as intent:
        make the veth            # the intent is on disk before this line runs
        intent["ifindex"] = ...  # anything learnt on the way is kept with it
    # here the step is marked done (on disk with the record's next write)

The intent holds what the undo needs, including the token that proves the
object is ours (a MAC derived from the id, a namespace's inode, a tag on a
file). Undo never trusts a name alone: it checks the token on the object
itself, so a step that was only intended (its side effect failed, or minirun
was killed before or during it) is undone only if the object exists *and*
is provably ours. See teardown.py for the walk back.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from . import faults
from .record import Container, Step
from .state import save


@contextlib.contextmanager
def step(c: Container, kind: str, **intent) -> Iterator[dict]:
    index = len(c.journal)
    c.journal.append(Step(kind, intent))
    save(c)
    faults.point(f"intent:{kind}")
    yield intent
    faults.point(f"done:{kind}")
    # Marked done in memory; it reaches the disk with the next write of the record
    # (the next step's intent, or the state change that ends the start). Undo never
    # depends on it: every undo checks its token on the object itself.
    c.journal[index] = Step(kind, intent, True)


def record_done(c: Container, kind: str, **intent) -> None:
    """A step whose side effect cannot be split from its record (it is in our own state
    root and carries the container's id, like an address lease): one write."""
    c.journal.append(Step(kind, intent, True))
    save(c)
    faults.point(f"done:{kind}")
