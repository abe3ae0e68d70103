"""What the user asked for, validated: immutable records and checks of all user input.

Everything here is pure (no side effects) except reading the rootfs and env
files the user named. `minirun run` builds a ContainerSpec before it creates
anything, so bad input never leaves anything behind.
"""
from __future__ import annotations

import os
import re
from typing import NamedTuple
from pathlib import Path

from .errors import UsageError

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
NAME_MAX = 128
HOSTNAME_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
                         r"(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")
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
        for n, raw in enumerate(text.split("\n"), 1):
            raw = raw.strip()
            if raw and not raw.startswith("#"):
                lines.append((raw, f"{f} line {n}"))
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

    @classmethod
    def parse(cls, spec: str) -> "Volume":
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise UsageError(f"invalid volume {spec!r}: expected HOST:CONTAINER[:ro|rw]")
        src, dst = parts[0], parts[1]
        mode = parts[2] if len(parts) == 3 else "rw"
        if mode not in ("ro", "rw"):
            raise UsageError(f"invalid volume {spec!r}: mode must be ro or rw")
        if not os.path.isabs(src) or not os.path.isabs(dst):
            raise UsageError(f"invalid volume {spec!r}: both paths must be absolute")
        if "\0" in spec:
            raise UsageError("invalid volume: contains a NUL byte")
        if not os.path.exists(src):
            raise UsageError(f"volume source {src!r} does not exist")
        if os.path.normpath(dst) == "/":
            raise UsageError(f"invalid volume {spec!r}: cannot mount over the container's /")
        return cls(os.path.realpath(src), os.path.normpath(dst), mode == "ro")


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

    def validate(self) -> "ContainerSpec":
        if not self.command:
            raise UsageError("no command given")
        if "\0" in "".join(self.command):
            raise UsageError("invalid command: contains a NUL byte")
        if not os.path.isabs(self.workdir):
            raise UsageError(f"invalid workdir {self.workdir!r}: must be an absolute path")
        if self.tty and self.detach:
            raise UsageError("-t with -d is not supported (no attach yet): use -d alone")
        if self.name is not None:
            check_name(self.name)
        if self.hostname is not None:
            check_hostname(self.hostname)
        return self

    def container_env(self, hostname: str) -> dict[str, str]:
        """The whole environment of the command: nothing of the host's leaks in."""
        env = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname,
               "HOME": "/root" if not self.user or self.user[0] == 0 else "/"}
        if self.tty:
            env["TERM"] = os.environ.get("TERM", "xterm")
        env.update(self.env)
        return env
