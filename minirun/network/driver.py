"""The network driver interface: what runtime.py asks of a network, and when.

    preflight(spec, ports)  before anything exists: refuse what cannot work (a host
                            port in use, a name taken, a link that is not ours)
    prepare(c)              before fork: reserve (address, host ports), journaled;
                            makes no kernel object
    new_netns               whether the container gets its own network namespace
    join_path(c)            or the /proc/PID/ns/net of a namespace to join
    attach(c, pid)          after fork: make the kernel objects from the host side,
                            each a journal step (journal.py) with its ownership token
    undo(c, steps)          undo those steps (newest first), only what is provably
                            ours; keeps going past failures and returns them all
    hosts_entries(c)        /etc/hosts lines for the container

Drivers: none, host, container:NAME (plugin.py) and bridge (bridge.py).
"""
from __future__ import annotations

from ..record import Container, Step
from ..failures import Failure


class NetworkDriver:
    name: str
    new_netns: bool

    def preflight(self, spec, ports: list) -> None: ...
    def prepare(self, c: Container) -> None: ...
    def join_path(self, c: Container) -> str | None: ...
    def attach(self, c: Container, pid: int) -> None: ...
    def undo(self, c: Container, steps: list[Step]) -> list[Failure]: ...
    def hosts_entries(self, c: Container) -> list[tuple[str, str]]: ...
