"""What every firewall backend shares: the data it is given, the interface, and the runner.

A backend renders its rules as text with pure functions (golden-tested without
root) and hands the text to a `Runner`, the only object that touches the
kernel. Tests inject a recording fake runner; the real one is `SystemRunner`.
"""
from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from collections.abc import Sequence
from ...tuples import NamedTuple

from minirun.errors import MinirunError, UsageError
# re-exported: callers and tests import them from here
from minirun.network.firewall.failure import CommandFailed, first_error_line  # noqa: F401

# Network names, container ids: they end up inside rule text and comments, so
# only characters that need no quoting anywhere are allowed.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}\Z")
# The state root's tag on everything minirun adds (several roots share one host).
_OWNER = re.compile(r"[a-z0-9]{1,16}\Z")
DEFAULT_OWNER = "default"
PROTOCOLS = ("tcp", "udp")
GATEWAY_MODES = ("nat", "nat-unprotected", "routed")


def routed_forwards(net: "NetworkInfo", forwards: list) -> list:
    """The published ports a routed network opens at the container's own address: one per
    (protocol, container address, container port), not those published on a loopback host
    address only (they are meant for the host alone)."""
    if net.mode != "routed":
        return []
    out = {}
    for fw in forwards:
        if fw.host_ip is not None and ipaddress.IPv4Address(fw.host_ip).is_loopback:
            continue
        out.setdefault((fw.proto, fw.container_ip, fw.container_port), fw)
    return list(out.values())


class _Checked:
    """Mixed into a NamedTuple: its fields are checked when it is made (`_check`), as a
    dataclass's __post_init__ would (`dataclasses` costs ~6 ms of every start to import)."""
    __slots__ = ()

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls, *args, **kwargs)
        self._check()
        return self


class _NetworkInfo(NamedTuple):

    name: str      # network name, e.g. "minirun"
    bridge: str    # bridge ifname, e.g. "minirun0"
    subnet: str    # "10.88.5.0/24"
    gateway: str   # "10.88.5.1" (address of the bridge)
    # "nat" (masquerade; from other hosts only published ports, through the host's
    # address), "routed" (no masquerade; other hosts with a route to the subnet also
    # reach published container ports at the container's own address) or
    # "nat-unprotected" (masquerade, and routed access to every port): Docker 28's modes
    mode: str = "nat"


class NetworkInfo(_Checked, _NetworkInfo):
    """One minirun network = one bridge."""
    __slots__ = ()

    def _check(self) -> None:
        check_name("network name", self.name)
        if self.mode not in GATEWAY_MODES:
            raise UsageError(f"firewall: invalid gateway mode {self.mode!r}")
        if not _IFNAME.match(self.bridge):
            raise UsageError(f"firewall: invalid bridge name {self.bridge!r}")
        try:
            net = ipaddress.IPv4Network(self.subnet, strict=True)
            gw = ipaddress.IPv4Address(self.gateway)
        except ValueError as exc:
            raise UsageError(f"firewall: network {self.name}: {exc}") from None
        if gw not in net:
            raise UsageError(f"firewall: network {self.name}: gateway {gw} outside {net}")


class _PortForward(NamedTuple):

    proto: str             # "tcp" | "udp"
    host_ip: str | None    # None = every local address of the host (incl. 127.0.0.1)
    host_port: int
    container_ip: str
    container_port: int


class PortForward(_Checked, _PortForward):
    """One published port, already resolved."""
    __slots__ = ()

    def _check(self) -> None:
        if self.proto not in PROTOCOLS:
            raise UsageError(f"firewall: invalid protocol {self.proto!r}")
        for port in (self.host_port, self.container_port):
            if not isinstance(port, int) or not 1 <= port <= 65535:
                raise UsageError(f"firewall: invalid port {port!r}")
        try:
            ipaddress.IPv4Address(self.container_ip)
            if self.host_ip is not None:
                ipaddress.IPv4Address(self.host_ip)
        except ValueError as exc:
            raise UsageError(f"firewall: {exc}") from None

    def __str__(self) -> str:
        return (f"{self.host_ip or '0.0.0.0'}:{self.host_port}->"
                f"{self.container_ip}:{self.container_port}/{self.proto}")


def check_name(what: str, value: str) -> str:
    if not isinstance(value, str) or not _SAFE_NAME.match(value):
        raise UsageError(f"firewall: invalid {what} {value!r}")
    return value


def check_owner(owner: str) -> str:
    """A state root's owner tag: 1 to 16 of [a-z0-9] (so a tag splits at its first ':')."""
    if not isinstance(owner, str) or not _OWNER.match(owner):
        raise UsageError(f"firewall: invalid owner tag {owner!r} (1-16 of a-z, 0-9)")
    return owner


def split_tag(tag: str | None) -> tuple[str | None, str]:
    """"<owner>:<rest>" -> (owner, rest); an untagged comment -> (None, comment)."""
    owner, sep, rest = (tag or "").partition(":")
    if sep and _OWNER.match(owner):
        return owner, rest
    return None, tag or ""


def published_by(owner: str, tag: str | None) -> str:
    """Who holds a host port, for a Conflict message: the container id, and the owner
    (state root) when it is not `owner`."""
    other, cid = split_tag(tag)
    if other is None:
        return tag or "someone else"
    return cid if other == owner else f"{cid} (minirun state root {other!r})"


class Firewall:
    name: str   # "nftables" | "iptables"
    owner: str  # the state root's tag on everything this instance adds

    def check_available(self) -> None: ...
    # UsageError naming what to install when the backend's tools are missing

    def setup_network(self, net: NetworkInfo) -> None: ...
    def teardown_network(self, net: NetworkInfo) -> None: ...
    def add_container(self, container_id: str, net: NetworkInfo,
                      forwards: list[PortForward]) -> None: ...
    def remove_container(self, container_id: str, net: NetworkInfo,
                         forwards: list[PortForward]) -> None: ...
    def remove_last_container(self, container_id: str, net: NetworkInfo,
                              forwards: list[PortForward]) -> None: ...
    # remove_container + teardown_network for the network's last container, in as
    # few kernel transactions as the backend allows (each deletion costs a grace period)
    def container_ids(self) -> set[str]: ...
    def purge_container(self, container_id: str) -> None: ...
    def network_names(self) -> set[str]: ...
    # both: this owner's only
    def intact(self, nets: list[NetworkInfo]) -> bool: ...
    # cheap: minirun's constant rules and these networks' rules/elements are in the kernel
    def restore(self, net: NetworkInfo, containers: dict[str, list[PortForward]]) -> None: ...
    # idempotent: the base, the network's rules and these containers' published ports again


# -- running ---------------------------------------------------------------

class Runner:
    def nft(self, script: str, *, json: bool = False, terse: bool = False) -> str:
        """Run an nft script as one transaction; return its output (JSON if asked;
        `terse`: listings without set elements)."""

    def run(self, argv: Sequence[str], input: str | None = None) -> str:
        """Run a tool (iptables-restore, iptables-save); return its stdout."""

    def available(self, tool: str) -> bool:
        """Whether `tool` (e.g. "iptables-restore") can be run ("libnftables": loaded)."""


class SystemRunner:
    """The real runner: libnftables in-process (falls back to `nft -f -`), tools by exec.

    `use_library`: True loads libnftables now, "lazy" at the first nft() (the iptables
    backend only needs it to look at other tables' forward chains), False never."""

    _TOOL_DIRS = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")

    def __init__(self, use_library: bool | str = True):
        self._lib = None
        self._lazy = use_library == "lazy"
        if use_library is True:
            self._load()

    def _load(self):
        if self._lazy or self._lib is None:
            from minirun.network.firewall import _libnft
            self._lib, self._lazy = _libnft.load(), False
        return self._lib

    def nft(self, script: str, *, json: bool = False, terse: bool = False) -> str:
        if self._lazy:
            self._load()
        if self._lib is not None:
            return self._lib.run(script, json=json, terse=terse)
        if json or terse:  # nft 1.0.6 prints nothing for `-j -f -`; listings are one command
            return self.run(["nft", *(["-j"] if json else []), *(["-t"] if terse else []),
                             *script.split()])
        return self.run(["nft", "-f", "-"], input=script)

    def element_comments(self, table: str, wanted) -> dict:
        """{(set, key): comment (None: it has none)} of the elements of `wanted` ((set,
        key) pairs) that are in table `ip <table>`, looked up in the kernel one key at a
        time (_nfquery: O(1) each, where libnftables loads the whole set). CommandFailed
        when the lookup cannot be made (the caller lists the table instead)."""
        from minirun.network.firewall import _nfquery
        out = {}
        try:
            with _nfquery.Lookup() as q:
                for set_name, key in wanted:
                    present, comment = q.comment(table, set_name, key)
                    if present:
                        out[(set_name, key)] = comment
        except (_nfquery.QueryError, ValueError, OSError) as exc:
            raise CommandFailed(f"element lookup: {exc}") from None
        return out

    def _which(self, tool: str) -> str | None:
        for d in self._TOOL_DIRS:
            path = os.path.join(d, tool)
            if os.access(path, os.X_OK):
                return path
        return None

    def available(self, tool: str) -> bool:
        if tool == "libnftables":
            return (self._load() if self._lazy else self._lib) is not None
        return self._which(tool) is not None

    def run(self, argv: Sequence[str], input: str | None = None) -> str:
        from minirun.procs import run_tool
        exe = self._which(argv[0]) or argv[0]
        try:
            code, out, err = run_tool(exe, list(argv), input)
        except OSError as exc:
            raise CommandFailed(f"{argv[0]}: {exc.strerror}") from None
        if code != 0:
            raise CommandFailed(first_error_line(err or out))
        return out


def default_lock_path() -> Path:
    return Path(os.environ.get("MINIRUN_RUNROOT", "/run/minirun")) / "firewall.lock"


def heredoc(command: str, text: str) -> str:
    """The shell form of feeding `text` to `command`, for the operation log: unindented,
    so the closing EOF ends the here-document when the output is pasted into a shell."""
    return f"{command} <<'EOF'\n{text.rstrip(chr(10))}\nEOF"


# why a firewall transaction is made, by the start of its operation's name
_WHY = (
    ("set up network", "the network's rules (in one transaction): masquerade or routed access "
     "by the network's mode, isolation from other networks, the drop of 127/8 arriving from "
     "anywhere but lo, and the maps that published ports go into"),
    ("tear down network", "the network's rules go (the whole table with the last network)"),
    ("restore network", "put the network's rules and its containers' published ports back "
     "(someone flushed the firewall)"),
    ("add container", "this container's published ports: DNAT from the host port to the "
     "container's address and port"),
    ("remove container", "this container's published ports go (and the network's rules, "
     "with the network's last container)"),
    ("purge container", "whatever is left of this container in the firewall goes"),
)


def why_of(op: str, compat: bool = False) -> str | None:
    """The `# why` of a firewall transaction (`op` names it: "set up network web", ...)."""
    if compat:
        return ("iptables' own FORWARD chain would drop the containers' traffic: accept the "
                "network's in it too")
    for start, why in _WHY:
        if op.startswith(start):
            return why
    return None


def fail(tool: str, op: str, exc: CommandFailed) -> MinirunError:
    return MinirunError(f"{tool}: {op}: {exc.message}")


def apply_nft(runner: Runner, op: str, script: str, why: str | None = None,
              tolerate: str | None = None) -> bool:
    """Record `script` in the operation log (under `why`), run it as one transaction
    unless the operation is only being explained, and name `op` if it fails. False when
    it failed with an error containing `tolerate` (the caller sorts that out)."""
    from minirun import oplog
    if not script:
        return True
    oplog.record(heredoc("nft -f -", script), why or why_of(op))
    if oplog.skip():
        return True
    try:
        runner.nft(script)
        return True
    except CommandFailed as exc:
        if tolerate is not None and tolerate in exc.message:
            return False
        raise fail("nft", op, exc) from None
