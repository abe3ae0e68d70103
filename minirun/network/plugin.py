"""The network plugin interface and the simple drivers (none, host, container:NAME).

A driver's life with one container, as runtime.py drives it:

    prepare(c)       before fork: validate, reserve (address, host ports) and
                     record the intent in the container's record; creates no
                     kernel object, so a bad input leaves nothing behind
    new_netns        whether the container gets its own network namespace
    join_fd(c)       or an open /proc/PID/ns/net of a namespace to join
    attach(c, pid)   after fork: make the kernel objects from the host side
    detach(c)        idempotent undo of everything, on every exit path; keeps
                     going past failures and returns them all

The bridge driver (bridge.py) is the interesting one; `get_driver` picks one
from `--network`: bridge (the default network), none, host, container:NAME, or
the name of a network made with `minirun network create`.
"""
from __future__ import annotations

import os
from typing import Protocol

from ..errors import MinirunError, NotFound
from ..state import Container, Paths, lookup
from . import netns


class NetworkDriver(Protocol):
    name: str
    new_netns: bool

    def prepare(self, c: Container) -> None: ...
    def join_fd(self, c: Container) -> int | None: ...
    def attach(self, c: Container, pid: int) -> None: ...
    def detach(self, c: Container) -> list[str]: ...
    def hosts_entries(self, c: Container) -> list[tuple[str, str]]: ...


class NoneDriver:
    """Loopback only. The namespace is still named, so `ip netns exec NAME ip link` works."""
    name = "none"
    new_netns = True

    def prepare(self, c: Container) -> None:
        c.update(network={"driver": self.name, "netns": c.name})

    def join_fd(self, c: Container) -> int | None:
        return None

    def attach(self, c: Container, pid: int) -> None:
        netns.attach(c.name, pid)

    def detach(self, c: Container) -> list[str]:
        return _collect([lambda: netns.detach((c.data.get("network") or {}).get("netns")
                                              or c.name)])

    def hosts_entries(self, c: Container) -> list[tuple[str, str]]:
        return []


class HostDriver:
    """The host's own network stack: nothing to create, nothing to undo."""
    name = "host"
    new_netns = False

    def prepare(self, c: Container) -> None:
        c.update(network={"driver": self.name})

    def join_fd(self, c: Container) -> int | None:
        return None

    def attach(self, c: Container, pid: int) -> None:
        pass

    def detach(self, c: Container) -> list[str]:
        return []

    def hosts_entries(self, c: Container) -> list[tuple[str, str]]:
        return []


class JoinDriver:
    """container:NAME: share another container's network namespace, as the members of a pod do."""
    name = "container"
    new_netns = False

    def __init__(self, paths: Paths, target: str):
        self.paths, self.target = paths, target

    def _other(self) -> Container:
        other = lookup(self.paths, self.target)
        if not other.is_running():
            raise MinirunError(f"cannot join the network of container {self.target}: "
                               "it is not running")
        if not (other.data.get("network") or {}).get("driver") in ("bridge", "none"):
            raise MinirunError(f"cannot join the network of container {self.target}: "
                               "it has no network namespace of its own")
        return other

    def prepare(self, c: Container) -> None:
        other = self._other()
        c.update(network={"driver": self.name, "container": other.id,
                          "ip": (other.data.get("network") or {}).get("ip")})

    def join_fd(self, c: Container) -> int | None:
        other = self._other()
        return os.open(f"/proc/{other.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)

    def attach(self, c: Container, pid: int) -> None:
        pass

    def detach(self, c: Container) -> list[str]:
        return []

    def hosts_entries(self, c: Container) -> list[tuple[str, str]]:
        ip = (c.data.get("network") or {}).get("ip")
        return [(ip, c.data["hostname"])] if ip else []


def _collect(steps) -> list[str]:
    """Run every undo step; keep going past failures and return them all."""
    failures = []
    for step in steps:
        try:
            step()
        except Exception as e:  # noqa: BLE001 - teardown must go on
            failures.append(str(e))
    return failures


def get_driver(paths: Paths, network: str, firewall: str = "nftables") -> NetworkDriver:
    """The driver for a `--network` value; validates it without creating anything."""
    if network == "none":
        return NoneDriver()
    if network == "host":
        return HostDriver()
    if network.startswith("container:"):
        target = network.split(":", 1)[1]
        if not target:
            raise MinirunError("--network container: needs a container name")
        return JoinDriver(paths, target)
    from .bridge import BridgeDriver
    try:
        return BridgeDriver.for_network(paths, network, firewall)
    except NotFound:
        raise NotFound(f"no such network: {network}") from None


def driver_of(paths: Paths, c: Container, firewall: str | None = None) -> NetworkDriver:
    """The driver that attached a recorded container, to undo what it did."""
    rec = c.data.get("network") or {}
    kind = rec.get("driver")
    if kind == "none":
        return NoneDriver()
    if kind == "bridge":
        from .bridge import BridgeDriver
        return BridgeDriver.from_record(paths, rec, firewall)
    if kind == "container":
        return JoinDriver(paths, rec.get("container", ""))
    return HostDriver()
