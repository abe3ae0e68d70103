"""The simple network drivers (none, host, container:NAME) and the choice of a driver.

The interface is in driver.py; the bridge driver, the interesting one, in
bridge.py. `get_driver` picks one from `--network`: bridge (the default
network), none, host, container:NAME, or the name of a network made with
`minirun network create`; `driver_of` finds the one that attached a recorded
container, to undo what it did.
"""
from __future__ import annotations


from ..errors import MinirunError, NotFound
from ..record import Attachment, Container, Step
from ..state import Paths, is_running, lookup, save
from ..failures import Failure
from . import netns


class NoneDriver:
    """Loopback only. The namespace is still named, so `ip netns exec NAME ip link` works."""
    name = "none"
    new_netns = True

    def preflight(self, spec, ports: list) -> None:
        if spec.name:
            netns.check_free(spec.name)

    def prepare(self, c: Container) -> None:
        c.network = Attachment(driver=self.name, netns=c.name)
        save(c)

    def join_path(self, c: Container) -> str | None:
        return None

    def attach(self, c: Container, pid: int) -> None:
        netns.attach_step(c, c.network.netns, pid)

    def undo(self, c: Container, steps: list[Step]) -> list[Failure]:
        return netns.undo_steps(c, steps)

    def hosts_entries(self, c: Container) -> list[tuple[str, str]]:
        return []


class HostDriver:
    """The host's own network stack: nothing to create, nothing to undo."""
    name = "host"
    new_netns = False

    def preflight(self, spec, ports: list) -> None:
        pass

    def prepare(self, c: Container) -> None:
        c.network = Attachment(driver=self.name)
        save(c)

    def join_path(self, c: Container) -> str | None:
        return None

    def attach(self, c: Container, pid: int) -> None:
        pass

    def undo(self, c: Container, steps: list[Step]) -> list[Failure]:
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
        if not is_running(other):
            raise MinirunError(f"cannot join the network of container {self.target}: "
                               "it is not running")
        if other.network is None or other.network.driver not in ("bridge", "none", "cni"):
            raise MinirunError(f"cannot join the network of container {self.target}: "
                               "it has no network namespace of its own")
        return other

    def preflight(self, spec, ports: list) -> None:
        self._other()

    def prepare(self, c: Container) -> None:
        other = self._other()
        c.network = Attachment(driver=self.name, container=other.id, ip=other.network.ip)
        save(c)

    def join_path(self, c: Container) -> str | None:
        return f"/proc/{self._other().pid}/ns/net"  # opened by the runtime (oci/create.py)

    def attach(self, c: Container, pid: int) -> None:
        pass

    def undo(self, c: Container, steps: list[Step]) -> list[Failure]:
        return []

    def hosts_entries(self, c: Container) -> list[tuple[str, str]]:
        ip = c.network.ip if c.network else None
        return [(ip, c.config.hostname)] if ip else []


def get_driver(paths: Paths, network: str, firewall: str = "nftables"):
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
    if network.startswith("cni:"):
        name = network.split(":", 1)[1]
        if not name:
            raise MinirunError("--network cni: needs the name of a CNI network")
        from .cni_driver import CniDriver
        return CniDriver(name)
    from .bridge import BridgeDriver
    try:
        return BridgeDriver.for_network(paths, network, firewall)
    except NotFound:
        raise NotFound(f"no such network: {network}") from None


def driver_of(c: Container):
    """The driver that attached a recorded container, to undo what it did."""
    att = c.network
    kind = att.driver if att else None
    if kind == "bridge":
        from .bridge import BridgeDriver
        return BridgeDriver.from_record(c.paths, att)
    if kind == "container":
        return JoinDriver(c.paths, att.container or "")
    if kind == "cni" or any(s.kind == "net.cni" for s in c.journal):
        from .cni_driver import CniDriver  # undo uses what the journal recorded
        return CniDriver(att.network if att else "", conflist={})
    if kind == "none" or any(s.kind == "net.netns" for s in c.journal):
        return NoneDriver()
    return HostDriver()
