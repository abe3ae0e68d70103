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
    # the CNI driver reads its directories from the environment (and records the plugin
    # directories with each container, for its DEL)
    for dest in ("cni_config_dir", "cni_plugin_dir"):
        if globs.get(dest):
            os.environ["MINIRUN_" + dest.upper()] = globs[dest]
    paths = Paths.from_env(globs.get("root"), globs.get("runroot"))
    if globs.get("explain"):
        from . import oplog
        oplog.explain_to(sys.stderr)
        if oplog.dry_run:  # --explain=only: every file written goes to a throwaway overlay
            oplog.isolate_files(paths.root, paths.runroot)
    return paths


def heal_firewall(paths) -> None:
    """Every command first checks that minirun's firewall rules are still there, and
    restores them if the host's firewall was flushed (heal.py). Costs a directory
    listing when no network is active."""
    from .heal import check
    check(paths)


# options whose parsing lives in runextras.py (imported only when one is given)
EXTRAS = ("tmpfs", "mount", "label", "label_file", "cidfile", "stop_signal", "stop_timeout",
          "publish_all")


def _name_options(o: dict) -> dict:
    """--network-alias, --dns, --dns-search, --dns-option, --add-host, checked."""
    from .network import dns
    net = o["network"] or "bridge"
    aliases = tuple(dns.check_name(a, "--network-alias") for a in o.get("network_alias") or ())
    if aliases and (net in ("bridge", "none", "host") or net.startswith("container:")):
        raise UsageError("--network-alias needs a network made by `minirun network create` "
                         "(the default bridge network has no name resolution, as in Docker)")
    return {"aliases": aliases,
            "dns": tuple(dns.check_ip(v, "--dns") for v in o.get("dns") or ()),
            "dns_search": tuple(v if v == "." else dns.check_name(v, "--dns-search")
                                for v in o.get("dns_search") or ()),
            "dns_options": tuple(dns.check_option(v) for v in o.get("dns_option") or ()),
            "extra_hosts": tuple(dns.parse_add_host(v) for v in o.get("add_host") or ())}


def run_command(paths, firewall: str, o: dict, rootfs: str, command) -> int:
    """`minirun run`: validate everything, then run; returns the exit code."""
    from . import caps
    from .runtime import run
    from .spec import ContainerSpec, Volume, check_rootfs, parse_env
    from .faults import phase
    phase("imports")
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
    names = {}
    if any(o.get(k) for k in ("network_alias", "dns", "dns_search", "dns_option", "add_host")):
        names = _name_options(o)
    resources = None
    rkeys = ("memory", "memory_swap", "cpus", "cpu_shares", "cpu_weight", "pids_limit",
             "cpuset_cpus")
    if any(o.get(key) is not None for key in rkeys):
        from .spec import parse_resources
        resources = parse_resources(**{key: o.get(key) for key in rkeys})
    image = None
    if not os.path.lexists(rootfs):  # a path that exists stays a path, as it always was
        from .images.apply import for_run
        image = for_run(paths, rootfs)
    if image is None and not command and o.get("entrypoint") is None:
        err = UsageError("missing argument COMMAND (ROOTFS is a directory: it has no "
                         "command of its own)")
        err.exit_code = 2  # click's code for a missing argument, as before images
        raise err
    env = parse_env(tuple(o["env"]), tuple(o["env_file"]))
    workdir, user = o["workdir"], None  # -u: resolved in the container's files (runextras)
    if o.get("entrypoint") is not None or image is not None:
        from .images.apply import command as image_command
        command = image_command(o.get("entrypoint"), tuple(command), image)
    if image is not None:  # its config, under what was given on the command line
        if not command:
            raise UsageError(f"no command specified: image {rootfs!r} has no ENTRYPOINT "
                             "or CMD (give a COMMAND)")
        env = {**image.env, **env}
        if workdir == "/" and image.workdir:
            workdir = image.workdir
    spec = ContainerSpec(
        rootfs=image.lowers[0] if image else check_rootfs(rootfs), command=tuple(command),
        name=o["name"],
        hostname=o["hostname"], env=env,
        workdir=workdir, user=user, interactive=o["interactive"],
        tty=o["tty"], remove=o["remove"], detach=o["detach"], init=o["init"],
        read_only=o["read_only"], volumes=tuple(Volume.parse(v) for v in o["volume"]),
        caps=tuple(caps.resolve(tuple(o["cap_add"]), tuple(o["cap_drop"]))),
        network=o["network"], ip=o["ip"], **names,
        **({"image": image.ref, "image_id": image.id, "lowers": image.lowers,
            "labels": image.labels, "exposed_ports": image.exposed_ports}
           if image else {})).validate()
    if resources is not None:
        spec = spec._replace(resources=resources)
    if (o["user"] is not None or (image is not None and image.user)
            or any(o.get(key) for key in EXTRAS) or any(v.name for v in spec.volumes)):
        from .runextras import apply_options  # only when one of them is used
        spec, ports = apply_options(paths, o, spec, ports,
                                    o["user"] if o["user"] is not None else
                                    (image.user if image is not None else None))
    if o.get("restart") is not None:
        from .restartpolicy import parse
        policy = parse(o["restart"])
        if policy[0] != "no" and o["remove"]:
            raise UsageError("--restart and --rm conflict: a removed container cannot restart")
        if policy[0] != "no" and not o["detach"]:
            raise UsageError("--restart needs -d: a foreground container ends with its run")
        spec = spec._replace(restart=policy)
    if o.get("security_opt") or o.get("privileged"):
        from .spec import parse_security_opts
        mode, profile = parse_security_opts(tuple(o.get("security_opt") or ()),
                                            bool(o.get("privileged")))
        if o.get("privileged"):  # every capability (--cap-drop still applies)
            drop = {caps.normalize(n) for n in o["cap_drop"]}  # names checked above
            kept = set() if "ALL" in drop else set(caps.in_bounding_set()) - drop
            spec = spec._replace(caps=tuple(sorted(kept)))
        spec = spec._replace(seccomp=mode, seccomp_profile=profile,
                             privileged=bool(o.get("privileged"))).validate()
    phase("validated")
    sys.stdout.flush()
    heal_firewall(paths)
    phase("firewall checked")
    return run(paths, spec, ports, firewall)
