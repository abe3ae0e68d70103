"""What the user asked for, validated: immutable records and checks of all user input.

Everything here is pure (no side effects) except reading the rootfs and env
files the user named. `minirun run` builds a ContainerSpec before it creates
anything, so bad input never leaves anything behind.
"""
from __future__ import annotations

import os
import re
from .tuples import NamedTuple
from pathlib import Path

from .errors import UsageError

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
NAME_MAX = 128
HOSTNAME_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
                         r"(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")
VOLUME_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")  # Docker's volume names
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def check_name(name: str, what: str = "container name") -> str:
    if len(name) > NAME_MAX:
        raise UsageError(f"invalid {what}: longer than {NAME_MAX} characters")
    if not NAME_RE.match(name):
        raise UsageError(f"invalid {what} {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-]* is allowed")
    return name


def check_hostname(name: str) -> str:
    if len(name) > 64 or not HOSTNAME_RE.match(name):
        raise UsageError(f"invalid hostname {name!r}")
    return name


def check_rootfs(path: str) -> str:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"rootfs {path!r} does not exist")
    if not p.is_dir():
        raise UsageError(f"rootfs {path!r} is not a directory")
    real = os.path.realpath(path)
    if real == "/":
        raise UsageError("rootfs must not be the host's root directory '/'")
    return real


def parse_env(items: tuple[str, ...], files: tuple[str, ...] = ()) -> dict[str, str]:
    """-e NAME=VALUE, -e NAME (copied from minirun's own environment, as Docker does), --env-file.

    Names follow Docker's rules: not empty, no whitespace, no NUL (and no '=', which ends
    the name). An env file holds NAME=VALUE lines; blank lines and lines starting with
    '#' are skipped. A shell-style `export NAME=VALUE` is refused, as Docker does (the
    name would be `export NAME`), with the file and the line number.
    """
    env: dict[str, str] = {}
    lines: list[tuple[str, str | None]] = []  # (NAME[=VALUE], "FILE line N" or None for -e)
    for f in files:
        try:
            text = Path(f).read_bytes().decode()
        except OSError as e:
            raise UsageError(f"cannot read env file {f!r}: {e.strerror}") from None
        except UnicodeDecodeError as e:
            raise UsageError(f"cannot read env file {f!r}: not UTF-8 text "
                             f"(byte {e.start})") from None
        # Docker's rules: leading whitespace dropped, the value kept as written (no
        # quote processing, trailing spaces kept), a NAME alone taken from the host
        for n, raw in enumerate(text.lstrip("\ufeff").split("\n"), 1):
            raw = raw.rstrip("\r").lstrip()
            if raw and not raw.startswith("#"):
                lines.append((raw if "=" in raw else raw.rstrip(), f"{f} line {n}"))
    lines += [(i, None) for i in items]
    for item, where in lines:
        name, eq, value = item.partition("=")
        why = env_name_problem(name) or ("contains a NUL byte" if "\0" in value else None)
        if why:
            # name the variable, never show its value (it may be a secret)
            where = f" in {where}" if where else ""
            raise UsageError(f"invalid environment variable {name!r}{where}: {why}")
        if not eq:
            if name not in os.environ:
                continue
            value = os.environ[name]
        env[name] = value
    return env


def env_name_problem(name: str) -> str | None:
    """Why `name` cannot be an environment variable's name (Docker's rules), or None."""
    if not name:
        return "the name is empty"
    if "\0" in name:
        return "contains a NUL byte"
    if any(c.isspace() for c in name):
        return "the name contains whitespace"
    return None


class Volume(NamedTuple):
    source: str
    target: str
    readonly: bool = False
    name: str | None = None   # a named volume (volumes.py): source is then its directory

    @classmethod
    def parse(cls, spec: str) -> "Volume":
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise UsageError(f"invalid volume {spec!r}: expected HOST:CONTAINER[:ro|rw]")
        src, dst = parts[0], parts[1]
        mode = parts[2] if len(parts) == 3 else "rw"
        if mode not in ("ro", "rw"):
            raise UsageError(f"invalid volume {spec!r}: mode must be ro or rw")
        if not os.path.isabs(src) and VOLUME_NAME_RE.match(src) and os.path.isabs(dst):
            if os.path.normpath(dst) == "/":
                raise UsageError(f"invalid volume {spec!r}: cannot mount over the "
                                 "container's /")
            # NAME:/path: the volume store resolves it (commands.run_command)
            return cls(src, os.path.normpath(dst), mode == "ro", name=src)
        if not os.path.isabs(src) or not os.path.isabs(dst):
            raise UsageError(f"invalid volume {spec!r}: both paths must be absolute (or "
                             "NAME:/path for a named volume)")
        if "\0" in spec:
            raise UsageError("invalid volume: contains a NUL byte")
        if not os.path.exists(src):
            raise UsageError(f"volume source {src!r} does not exist")
        if os.path.normpath(dst) == "/":
            raise UsageError(f"invalid volume {spec!r}: cannot mount over the container's /")
        return cls(os.path.realpath(src), os.path.normpath(dst), mode == "ro")


class Tmpfs(NamedTuple):
    """--tmpfs / --mount type=tmpfs: a tmpfs at `target` with mount(8) options."""
    target: str
    options: tuple[str, ...] = ()


def parse_user(user: str | None) -> tuple[int, int] | None:
    if user is None:
        return None
    m = re.fullmatch(r"(\d+)(?::(\d+))?", user)
    if not m:
        raise UsageError(f"invalid user {user!r}: expected UID[:GID] (numbers)")
    uid = int(m.group(1))
    gid = int(m.group(2)) if m.group(2) is not None else uid
    if uid > 2**32 - 2 or gid > 2**32 - 2:
        raise UsageError(f"invalid user {user!r}: out of range")
    return uid, gid


class Resources(NamedTuple):
    """Resource limits (Docker's flags), validated; None means "not limited"/"default".
    memory_swap is Docker's total of memory and swap (-1: unlimited swap)."""
    memory: int | None = None          # bytes (--memory)
    memory_swap: int | None = None     # bytes, memory + swap (--memory-swap), -1 unlimited
    cpus: float | None = None          # --cpus: CFS quota = cpus * CPU_PERIOD
    cpu_shares: int | None = None      # --cpu-shares (v1 cpu.shares, 2..262144)
    cpu_weight: int | None = None      # --cpu-weight (v2 cpu.weight, 1..10000)
    pids_limit: int | None = None      # --pids-limit (None: unlimited)
    cpuset_cpus: str | None = None     # --cpuset-cpus, e.g. "0-1,3"

    @property
    def cpu_quota(self) -> int | None:
        return None if self.cpus is None else round(self.cpus * CPU_PERIOD)

    def any(self) -> bool:
        return any(v is not None for v in self)


CPU_PERIOD = 100000        # microseconds, as Docker's --cpus uses
MIN_MEMORY = 6 * 1024 * 1024  # Docker's minimum for --memory
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_bytes(value: str, flag: str) -> int:
    """Docker's RAMInBytes: a number with an optional unit b/k/m/g/t/p (binary; "kb",
    "mb"... too), case-insensitive: 64m, 1.5g, 1048576."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?\s*", value, re.IGNORECASE)
    if not m or (m.group(3) and m.group(3).lower() == "ib" and not m.group(2)):
        raise UsageError(f"invalid {flag} {value!r}: expected a size such as 64m, 1g or "
                         "a number of bytes")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _int(value: str, flag: str) -> int:
    try:
        return int(value, 10)
    except ValueError:
        raise UsageError(f"invalid {flag} {value!r}: expected an integer") from None


def parse_cpuset(value: str, available: set[int] | None = None) -> str:
    """--cpuset-cpus "0-2,4": the syntax, and every CPU available to minirun (Docker's
    check, with its message)."""
    cpus: set[int] = set()
    for part in value.split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part.strip())
        if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
            raise UsageError(f"invalid --cpuset-cpus {value!r}: expected a list such as "
                             "0-2,4")
        lo = int(m.group(1))
        cpus.update(range(lo, int(m.group(2) or lo) + 1))
    if available is None:
        available = os.sched_getaffinity(0)
    missing = sorted(cpus - available)
    if missing:
        raise UsageError(f"invalid --cpuset-cpus {value!r}: requested CPUs are not "
                         f"available (CPU {missing[0]}), available: "
                         f"{format_cpuset(available)}")
    return format_cpuset(cpus)


def format_cpuset(cpus) -> str:
    """{0, 1, 2, 4} -> "0-2,4" (the kernel's list format)."""
    out, run = [], []
    for c in sorted(cpus):
        if run and c == run[-1] + 1:
            run.append(c)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [c]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def parse_resources(memory: str | None = None, memory_swap: str | None = None,
                    cpus: str | None = None, cpu_shares: str | None = None,
                    cpu_weight: str | None = None, pids_limit: str | None = None,
                    cpuset_cpus: str | None = None, ncpus: int | None = None,
                    available: set[int] | None = None) -> Resources:
    """The resource flags, validated as Docker does (its messages where it has one)."""
    mem = swap = None
    if memory is not None:
        mem = parse_bytes(memory, "--memory")
        if mem == 0:
            mem = None  # Docker: 0 means unlimited
        elif mem < MIN_MEMORY:
            raise UsageError(f"invalid --memory {memory!r}: minimum memory limit allowed "
                             "is 6MB")
    if memory_swap is not None:
        if memory_swap.strip() == "-1":
            swap = -1
        else:
            swap = parse_bytes(memory_swap, "--memory-swap")
            if mem is None:
                raise UsageError("--memory-swap needs --memory too (it is the total of "
                                 "memory and swap)")
            if swap < mem:
                raise UsageError(f"invalid --memory-swap {memory_swap!r}: it is the total "
                                 "of memory and swap, so it must not be less than --memory")
    if mem is not None and swap is None:
        swap = 2 * mem  # Docker's default: as much swap as memory
    quota = None
    if cpus is not None:
        try:
            quota = float(cpus)
        except ValueError:
            raise UsageError(f"invalid --cpus {cpus!r}: expected a number such as 0.5") from None
        n = ncpus or os.cpu_count() or 1
        if quota == 0:
            quota = None
        elif not 0.01 <= quota <= n:
            raise UsageError(f"invalid --cpus {cpus!r}: range of CPUs is from 0.01 to "
                             f"{n:.2f}, as there are only {n} CPUs available")
    shares = weight = None
    if cpu_shares is not None and cpu_weight is not None:
        raise UsageError("--cpu-shares and --cpu-weight set the same thing: give one")
    if cpu_shares is not None:
        shares = _int(cpu_shares, "--cpu-shares")
        if shares == 0:
            shares = None
        elif not 2 <= shares <= 262144:
            raise UsageError(f"invalid --cpu-shares {cpu_shares!r}: from 2 to 262144")
    if cpu_weight is not None:
        weight = _int(cpu_weight, "--cpu-weight")
        if not 1 <= weight <= 10000:
            raise UsageError(f"invalid --cpu-weight {cpu_weight!r}: from 1 to 10000")
    pids = None
    if pids_limit is not None:
        pids = _int(pids_limit, "--pids-limit")
        if pids < -1:
            raise UsageError(f"invalid --pids-limit {pids_limit!r}: a positive number, "
                             "or 0 or -1 for unlimited")
        if pids <= 0:
            pids = None
    cpuset = parse_cpuset(cpuset_cpus, available) if cpuset_cpus is not None else None
    return Resources(mem, swap, quota, shares, weight, pids, cpuset)


class ContainerSpec(NamedTuple):
    rootfs: str
    command: tuple[str, ...]
    name: str | None = None
    hostname: str | None = None
    env: dict[str, str] = {}   # never mutated
    workdir: str = "/"
    user: tuple[int, int] | None = None
    interactive: bool = False
    tty: bool = False
    remove: bool = False
    detach: bool = False
    init: bool = False
    read_only: bool = False
    volumes: tuple[Volume, ...] = ()
    caps: tuple[str, ...] = ()
    network: str = "bridge"
    ip: str | None = None
    resources: Resources = Resources()
    seccomp: str = "default"             # default | unconfined | custom
    seccomp_profile: str | None = None   # custom: the checked profile, compact JSON
    privileged: bool = False
    image: str | None = None             # run IMAGE: the reference, its ID, its layers
    image_id: str | None = None
    lowers: tuple[str, ...] = ()         # top first; rootfs is then the top layer
    labels: dict[str, str] = {}          # never mutated
    exposed_ports: tuple[str, ...] = ()
    tmpfs: tuple[Tmpfs, ...] = ()
    groups: tuple[int, ...] = ()         # supplementary groups of -u NAME
    home: str | None = None              # -u NAME: HOME from the container's passwd
    stop_signal: int | None = None       # --stop-signal [SIGTERM]
    stop_timeout: int | None = None      # --stop-timeout [10]
    cidfile: str | None = None
    aliases: tuple[str, ...] = ()        # --network-alias, --dns... (network/dns.py checks)
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    extra_hosts: tuple[tuple[str, str], ...] = ()
    restart: tuple[str, int] = ("no", 0)  # --restart (restartpolicy.py)

    def validate(self) -> "ContainerSpec":
        if not self.command:
            raise UsageError("no command given")
        if "\0" in "".join(self.command):
            raise UsageError("invalid command: contains a NUL byte")
        if not os.path.isabs(self.workdir):
            raise UsageError(f"invalid workdir {self.workdir!r}: must be an absolute path")
        if self.name is not None:
            check_name(self.name)
        if self.hostname is not None:
            check_hostname(self.hostname)
        if self.seccomp not in ("default", "unconfined", "custom"):
            raise UsageError(f"invalid seccomp mode {self.seccomp!r}")
        if self.seccomp == "custom":  # libseccomp must accept it before anything exists
            from .seccomp import check
            check(self.seccomp, self.seccomp_profile, self.caps)
        return self

    def container_env(self, hostname: str) -> dict[str, str]:
        """The whole environment of the command: nothing of the host's leaks in."""
        env = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname,
               "HOME": self.home or ("/root" if not self.user or self.user[0] == 0 else "/")}
        if self.tty:
            env["TERM"] = os.environ.get("TERM", "xterm")
        env.update(self.env)
        return env


def parse_security_opts(values: tuple[str, ...], privileged: bool = False
                        ) -> tuple[str, str | None]:
    """--security-opt and --privileged -> (seccomp mode, custom profile or None). A
    profile file is read and checked here (bad JSON, an unknown action: UsageError).
    --privileged runs unconfined whatever --security-opt says, as in Docker."""
    mode, profile = "default", None
    if values:
        from .seccomp import security_opts
        mode, profile = security_opts(values)
    if privileged:
        return "unconfined", None
    return mode, profile
