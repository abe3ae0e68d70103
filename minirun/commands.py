"""What the CLI verbs do once their arguments are parsed; shared by cli.py (click) and
fastpath.py (the click-free `run`)."""
from __future__ import annotations

import os
import sys

from .errors import MinirunError, UsageError


def setup_globals(globs: dict):
    """Apply the global options; returns the state paths."""
    from .state import Paths
    if os.geteuid() != 0:
        raise MinirunError("minirun must run as root")
    if globs.get("debug"):
        os.environ["MINIRUN_DEBUG"] = "1"
    if globs.get("explain"):
        from . import oplog
        oplog.explain_to(sys.stderr)
    return Paths.from_env(globs.get("root"), globs.get("runroot"))


def heal_firewall(paths) -> None:
    """Every command first checks that minirun's firewall rules are still there, and
    restores them if the host's firewall was flushed (heal.py). Costs a directory
    listing when no network is active."""
    from .heal import check
    check(paths)


def run_command(paths, firewall: str, o: dict, rootfs: str, command) -> int:
    """`minirun run`: validate everything, then run; returns the exit code."""
    from . import caps
    from .runtime import run
    from .spec import ContainerSpec, Volume, check_rootfs, parse_env, parse_user
    ports = []
    if o["publish"]:  # the parser (and random, re...) only when needed
        from .network.ports import parse_all
        ports = parse_all(o["publish"])
    if o["ip"] is not None:
        import ipaddress
        try:
            ipaddress.IPv4Address(o["ip"])
        except ValueError:
            raise UsageError(f"invalid --ip {o['ip']!r}") from None
        # none, host and container:NAME have no address of their own to choose (Docker
        # refuses it too): silently ignoring the address would hide the mistake
        net = o["network"] or ""
        if net in ("none", "host") or net.startswith("container:"):
            shown = "container:NAME" if net.startswith("container:") else net
            raise UsageError(f"--ip needs a bridge network, not --network {shown}")
    spec = ContainerSpec(
        rootfs=check_rootfs(rootfs), command=tuple(command), name=o["name"],
        hostname=o["hostname"], env=parse_env(tuple(o["env"]), tuple(o["env_file"])),
        workdir=o["workdir"], user=parse_user(o["user"]), interactive=o["interactive"],
        tty=o["tty"], remove=o["remove"], detach=o["detach"], init=o["init"],
        read_only=o["read_only"], volumes=tuple(Volume.parse(v) for v in o["volume"]),
        caps=tuple(caps.resolve(tuple(o["cap_add"]), tuple(o["cap_drop"]))),
        network=o["network"], ip=o["ip"]).validate()
    sys.stdout.flush()
    heal_firewall(paths)
    return run(paths, spec, ports, firewall)
