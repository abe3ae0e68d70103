"""A container's record, typed: what was asked, what was made, and the journal of steps.

One module owns the record's shape and its JSON form; everything else reads
attributes, never string keys. The lifecycle states are the OCI runtime spec's:

    creating   the record exists, resources are being made (a crash here is rolled back)
    created    PID 1 exists in its namespaces, the network is attached, exec not yet done
    running    the command was exec'd
    stopped    PID 1 has exited (its exit code is recorded) or never started

`docker_status()` gives Docker's word for `ps` and `inspect` (created, running,
exited, dead).

The journal is the list of side effects made for the container, in order.
Each step is written as *intent* (with the token that will prove the object
is ours: a MAC, a namespace inode, an owner-tagged file) before the side
effect, and marked *done* after it. Teardown (teardown.py) walks it in
reverse; see there.
"""
from __future__ import annotations

from .tuples import NamedTuple
TYPE_CHECKING = False  # typing costs ~3 ms of every start: for annotations only
if TYPE_CHECKING:
    from typing import Any

from .spec import Resources, Tmpfs, Volume

FORMAT = 2  # the record's layout version

CREATING, CREATED, RUNNING, STOPPED = "creating", "created", "running", "stopped"
STATES = (CREATING, CREATED, RUNNING, STOPPED)


class Port(NamedTuple):
    """A published port. In a Config, host_port None means "pick a free one"."""
    host_ip: str | None
    host_port: int | None
    container_port: int
    proto: str
    host_range: tuple[int, int] | None = None  # -p 8000-8010:80: host_port picked in it


class Config(NamedTuple):
    """What `run` was asked for, validated (the spec, as recorded)."""
    rootfs: str
    command: tuple[str, ...]
    hostname: str
    env: dict[str, str]
    workdir: str = "/"
    user: tuple[int, int] | None = None
    caps: tuple[str, ...] = ()
    read_only: bool = False
    init: bool = False
    tty: bool = False
    interactive: bool = False
    remove: bool = False
    detach: bool = False
    network_mode: str = "bridge"
    requested_ip: str | None = None
    ports: tuple[Port, ...] = ()
    volumes: tuple[Volume, ...] = ()
    seccomp: str = "default"             # default | unconfined | custom (seccomp.py)
    seccomp_profile: str | None = None   # custom: the checked profile, compact JSON
    privileged: bool = False
    resources: Resources = Resources()
    image: str | None = None             # the image reference `run` was given (images/)
    image_id: str | None = None          # its ID (the config's sha256 hex)
    lowers: tuple[str, ...] = ()         # its layer directories, top first (overlay lowerdir)
    labels: dict[str, str] = {}          # the image's Labels (never mutated)
    exposed_ports: tuple[str, ...] = ()  # the image's ExposedPorts ("80/tcp"), for -P
    tmpfs: tuple[Tmpfs, ...] = ()        # --tmpfs, --mount type=tmpfs
    groups: tuple[int, ...] = ()         # supplementary groups (-u NAME)
    stop_signal: int | None = None       # --stop-signal: what `stop` sends [SIGTERM]
    stop_timeout: int | None = None      # --stop-timeout: `stop`'s default grace [10 s]
    cidfile: str | None = None           # --cidfile: where the id was written
    aliases: tuple[str, ...] = ()        # --network-alias: more names on a named network
    dns: tuple[str, ...] = ()            # --dns servers
    dns_search: tuple[str, ...] = ()     # --dns-search domains
    dns_options: tuple[str, ...] = ()    # --dns-option
    extra_hosts: tuple[tuple[str, str], ...] = ()  # --add-host (name, ip | host-gateway)
    restart_policy: str = "no"           # --restart (restartpolicy.py)
    restart_max: int = 0                 # on-failure:N

    def to_json(self) -> dict:
        d = self._asdict()
        d["ports"] = [p._asdict() for p in self.ports]
        d["volumes"] = [v._asdict() for v in self.volumes]
        d["resources"] = self.resources._asdict()
        d["tmpfs"] = [t._asdict() for t in self.tmpfs]
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Config":
        d = dict(d)
        d["command"] = tuple(d["command"])
        d["caps"] = tuple(d.get("caps", ()))
        d["user"] = tuple(d["user"]) if d.get("user") else None
        d["ports"] = tuple(_make(Port, p) for p in d.get("ports", ()))
        d["volumes"] = tuple(Volume(**v) for v in d.get("volumes", ()))
        d["resources"] = Resources(**{k: v for k, v in (d.get("resources") or {}).items()
                                      if k in Resources._fields})
        d["lowers"] = tuple(d.get("lowers", ()))
        d["exposed_ports"] = tuple(d.get("exposed_ports", ()))
        d["tmpfs"] = tuple(Tmpfs(t["target"], tuple(t.get("options", ())))
                           for t in d.get("tmpfs", ()))
        d["groups"] = tuple(d.get("groups", ()))
        for key in ("aliases", "dns", "dns_search", "dns_options"):
            d[key] = tuple(d.get(key, ()))
        d["extra_hosts"] = tuple(tuple(h) for h in d.get("extra_hosts", ()))
        return _make(cls, d)


def _make(cls, d: dict):
    """cls(**d) for a NamedTuple, ~4x faster (`ps` builds 1000 records): the same
    TypeError for a field it does not have, KeyError for a required one missing."""
    fields = cls._fields
    if not isinstance(d, dict):
        raise TypeError(f"{cls.__name__}: not an object: {d!r}")
    if not d.keys() <= set(fields):
        raise TypeError(f"{cls.__name__}: unexpected fields {sorted(d.keys() - set(fields))}")
    defaults = cls._field_defaults
    return tuple.__new__(cls, [d[f] if f in d else defaults[f] for f in fields])


class Attachment(NamedTuple):
    """The container's network, as its driver made it."""
    driver: str                       # bridge | none | host | container
    netns: str | None = None          # the /run/netns name
    network: str | None = None        # bridge driver: the network's name ...
    bridge: str | None = None
    subnet: str | None = None
    gateway: str | None = None
    firewall: str | None = None
    veth: str | None = None
    ip: str | None = None
    mac: str | None = None            # the container's eth0
    ports: tuple[Port, ...] = ()      # resolved host ports
    container: str | None = None      # container:NAME: whose namespace is shared
    ifname: str | None = None         # `network connect`: the interface inside (eth1...)
    aliases: tuple[str, ...] = ()     # `network connect --alias`

    @property
    def prefixlen(self) -> int:
        return int(self.subnet.split("/")[1]) if self.subnet else 0

    def to_json(self) -> dict:
        d = self._asdict()
        d["ports"] = [p._asdict() for p in self.ports]
        return d

    @classmethod
    def from_json(cls, d: dict | None) -> "Attachment | None":
        if not d:
            return None
        d = dict(d)
        d["ports"] = tuple(_make(Port, p) for p in d.get("ports", ()))
        d["aliases"] = tuple(d.get("aliases", ()))
        return _make(cls, d)


class Step(NamedTuple):
    """One side effect: `kind` names it ("net.veth", "ipam.lease", ...), `intent` holds
    what is needed to undo it and to prove the object is ours."""
    kind: str
    intent: dict
    done: bool = False


class Container:
    """One container's record. Only state.py reads and writes it on disk."""

    __slots__ = ("paths", "id", "name", "created", "state", "pid", "pid_start", "owner_pid",
                 "owner_start", "exit_code", "started", "finished", "config", "network",
                 "journal", "torn_down", "oom_killed", "networks", "paused", "restart_count",
                 "restarting", "manually_stopped", "restart_delay")

    def __init__(self, paths, cid: str, name: str, config: Config, created: float = 0.0,
                 state: str = CREATING, pid: int | None = None, pid_start: int | None = None,
                 owner_pid: int | None = None, owner_start: int | None = None,
                 exit_code: int | None = None, started: float | None = None,
                 finished: float | None = None, network: Attachment | None = None,
                 journal: list[Step] | None = None, torn_down: bool = False,
                 oom_killed: bool = False, networks: list[Attachment] | None = None,
                 paused: bool = False, restart_count: int = 0,
                 restarting: bool = False, manually_stopped: bool = False,
                 restart_delay: float = 0.0):
        self.paths, self.id, self.name, self.config = paths, cid, name, config
        self.created, self.state = created, state
        self.pid, self.pid_start = pid, pid_start
        self.owner_pid, self.owner_start = owner_pid, owner_start
        self.exit_code, self.started, self.finished = exit_code, started, finished
        self.network = network
        self.journal: list[Step] = journal or []
        self.torn_down = torn_down
        self.oom_killed = oom_killed  # Docker's State.OOMKilled: the cgroup's OOM counter
        # more networks, joined by `network connect` (network/connect.py), journaled
        self.networks: list[Attachment] = networks or []
        # `minirun pause`: set before the cgroup is frozen (so every teardown thaws it
        # first), cleared after it is thawed
        self.paused = paused
        # --restart: restarts so far, waiting for the next one (its delay, the backoff),
        # and whether the user stopped it (stop, kill, rm -f: no restart until `start`)
        self.restart_count, self.restarting = restart_count, restarting
        self.manually_stopped, self.restart_delay = manually_stopped, restart_delay

    # -- serialiser: the one place that knows the JSON layout -------------
    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "id": self.id, "name": self.name, "created": self.created,
                "state": self.state, "pid": self.pid, "pid_start": self.pid_start,
                "owner_pid": self.owner_pid, "owner_start": self.owner_start,
                "exit_code": self.exit_code, "started": self.started,
                "finished": self.finished, "config": self.config.to_json(),
                "network": self.network.to_json() if self.network else None,
                "journal": [s._asdict() for s in self.journal], "torn_down": self.torn_down,
                "oom_killed": self.oom_killed,
                "networks": [a.to_json() for a in self.networks], "paused": self.paused,
                "restart_count": self.restart_count, "restarting": self.restarting,
                "manually_stopped": self.manually_stopped,
                "restart_delay": self.restart_delay}

    @classmethod
    def from_json(cls, paths, d: dict[str, Any]) -> "Container":
        if d.get("format") != FORMAT:
            raise ValueError(f"record format {d.get('format')!r}, expected {FORMAT}")
        return cls(paths, d["id"], d["name"], Config.from_json(d["config"]),
                   created=d["created"], state=d["state"], pid=d["pid"],
                   pid_start=d["pid_start"], owner_pid=d["owner_pid"],
                   owner_start=d["owner_start"], exit_code=d["exit_code"],
                   started=d["started"], finished=d["finished"],
                   network=Attachment.from_json(d["network"]),
                   journal=[_make(Step, s) for s in d["journal"]], torn_down=d["torn_down"],
                   oom_killed=d.get("oom_killed", False),
                   networks=[Attachment.from_json(a) for a in d.get("networks", ())],
                   paused=d.get("paused", False),
                   restart_count=d.get("restart_count", 0),
                   restarting=d.get("restarting", False),
                   manually_stopped=d.get("manually_stopped", False),
                   restart_delay=d.get("restart_delay", 0.0))

    # -- derived ------------------------------------------------------------
    @property
    def dir(self):
        return self.paths.container_dir(self.id)

    @property
    def record_path(self):
        return self.dir / "state.json"

    @property
    def log_path(self):
        return self.dir / "container.log"

    @property
    def explain_path(self):
        """Where the monitor's teardown of a detached container is explained."""
        return self.dir / "explain.log"

    def short_id(self) -> str:
        return self.id[:12]

    def steps(self, kind: str) -> list[Step]:
        return [s for s in self.journal if s.kind == kind]
