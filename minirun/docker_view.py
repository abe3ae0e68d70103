"""Docker-shaped views of minirun's records: `inspect` objects, `ps` rows and filters,
`network inspect`/`ls`, human times, and `--format` rendering (table, json, templates).

Pure functions of records and a clock (`now`), so they are unit-tested without
a kernel. Records may carry fields added after this module (labels, restart
policy, entrypoint): every optional field is read with a default.
"""
from __future__ import annotations

import re
import time

from . import gotemplate

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, as Docker prints an unset time


# -- times ---------------------------------------------------------------------------

def rfc3339(t: float | None) -> str:
    """Go's RFC3339Nano in UTC (trailing zeros of the fraction dropped), as Docker's
    inspect prints times."""
    if not t:
        return ZERO_TIME
    secs = int(t)
    frac = f"{round((t - secs) * 1e9):09d}".rstrip("0")
    if len(frac) > 9:  # rounding reached the next second
        secs, frac = secs + 1, ""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + \
        (f".{frac}" if frac else "") + "Z"


def local_time(t: float) -> str:
    """Go's time.Time.String() without the monotonic part (ps's CreatedAt)."""
    return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(t))


def human_duration(seconds: float) -> str:
    """Docker's units.HumanDuration: "Less than a second", "About a minute", "2 hours"."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def ago(t: float, now: float) -> str:
    return human_duration(max(0.0, now - t)) + " ago"


# -- a container --------------------------------------------------------------------

def _opt(obj, name, default=None):
    v = getattr(obj, name, default)
    return default if v is None else v


def status_word(c, word: str | None = None) -> str:
    """Docker's State.Status: created, running, paused, restarting, exited, dead."""
    if word is None:
        from .state import docker_status
        word = docker_status(c)
    if word == "running" and _opt(c, "paused", False):
        return "paused"
    if _opt(c, "restarting", False):
        return "restarting"
    return word


def status_text(c, word: str, now: float) -> str:
    """ps's STATUS: "Up 3 minutes", "Up Less than a second (Paused)", "Exited (0) 2
    seconds ago", "Created", "Restarting (1) 5 seconds ago", "Dead"."""
    if word in ("running", "paused"):
        up = "Up " + human_duration(max(0.0, now - (c.started or c.created)))
        return up + (" (Paused)" if word == "paused" else "")
    if word == "restarting":
        return f"Restarting ({c.exit_code or 0}) {ago(c.finished or now, now)}"
    if word == "exited":
        return f"Exited ({c.exit_code or 0}) {ago(c.finished or c.created, now)}"
    return word.capitalize()


def argv(c) -> list[str]:
    """The container's whole command line: entrypoint and command."""
    ep = list(_opt(c.config, "entrypoint", ()) or ())
    return ep + list(c.config.command)


def ellipsis(s: str, n: int) -> str:
    """Docker's stringutils.Ellipsis: cut to n characters, the last one an ellipsis."""
    if len(s) <= n:
        return s
    return s[:n] if n <= 3 else s[:n - 1] + "…"


def _go_quote(s: str) -> str:
    """strconv.Quote, enough for command lines."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out) + '"'


def image_name(c) -> str:
    return _opt(c.config, "image", None) or c.config.rootfs


def labels(c) -> dict[str, str]:
    return dict(sorted((_opt(c.config, "labels", {}) or {}).items()))


def restart_policy(c) -> dict:
    pol = _opt(c.config, "restart", None) or _opt(c.config, "restart_policy", None) or "no"
    if isinstance(pol, dict):
        return {"Name": pol.get("Name") or pol.get("name") or "no",
                "MaximumRetryCount": int(pol.get("MaximumRetryCount")
                                         or pol.get("max_retries") or 0)}
    if isinstance(pol, (list, tuple)):
        return {"Name": str(pol[0]), "MaximumRetryCount": int(pol[1] or 0) if len(pol) > 1
                else 0}
    name, _, n = str(pol).partition(":")
    return {"Name": name, "MaximumRetryCount": int(n) if n.isdigit() else 0}


def _port_key(p) -> str:
    return f"{p.container_port}/{p.proto}"


def _published(c) -> list:
    return list(c.network.ports) if c.network and c.network.ports else []


def ports_text(c) -> str:
    """ps's PORTS: published ports as "0.0.0.0:8080->80/tcp", exposed ones as "80/tcp"."""
    pub = _published(c)
    out = [f"{p.host_ip or '0.0.0.0'}:{p.host_port}->{p.container_port}/{p.proto}"
           for p in pub]
    seen = {_port_key(p) for p in pub}
    out += [e for e in _opt(c.config, "exposed_ports", ()) if e not in seen]
    return ", ".join(out)


def network_names(c) -> list[str]:
    att = c.network
    if att is None:
        return []
    if att.driver == "bridge":
        return [att.network or "bridge"]
    return [att.driver]


def _user(c) -> str:
    u = _opt(c.config, "user", None)
    if not u:
        return ""
    return f"{u[0]}:{u[1]}" if len(u) > 1 else str(u[0])


def container_inspect(c, word: str | None = None, network_id=None) -> dict:
    """Docker's `inspect` object for a container (types.ContainerJSON's main keys),
    minirun's own facts under "Minirun"."""
    from .state import sha256_hex
    network_id = network_id or (lambda name: sha256_hex(f"network:{name}"))
    cfg, att = c.config, c.network
    word = status_word(c, word)
    running = word in ("running", "paused", "restarting")
    cmd = argv(c)
    ports: dict = {e: None for e in _opt(cfg, "exposed_ports", ())}
    bindings: dict = {}
    for p in cfg.ports:
        bindings.setdefault(_port_key(p), []).append(
            {"HostIp": p.host_ip or "", "HostPort": str(p.host_port or "")})
    for p in _published(c):
        ports.setdefault(_port_key(p), None)
        ports[_port_key(p)] = (ports[_port_key(p)] or []) + [
            {"HostIp": p.host_ip or "0.0.0.0", "HostPort": str(p.host_port)}]
    if att is None or att.driver != "bridge":
        ports = {}
    res = cfg.resources
    networks = {}
    if att is not None and att.driver == "bridge":
        # the first network, then those joined by `network connect` (network/connect.py)
        for i, a in enumerate([att, *_opt(c, "networks", [])]):
            name = a.network or "bridge"
            aliases = list(_opt(a, "aliases", ()) or ()) or None
            networks[name] = {"IPAMConfig": ({"IPv4Address": cfg.requested_ip}
                                             if i == 0 and cfg.requested_ip else None),
                              "Links": None, "Aliases": aliases, "MacAddress": a.mac or "",
                              "NetworkID": network_id(name), "EndpointID": "",
                              "Gateway": a.gateway or "", "IPAddress": a.ip or "",
                              "IPPrefixLen": a.prefixlen, "IPv6Gateway": "",
                              "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                              "DNSNames": None}
    elif att is not None and att.driver in ("host", "none"):
        networks[att.driver] = {"IPAMConfig": None, "Links": None, "Aliases": None,
                                "MacAddress": "", "NetworkID": network_id(att.driver),
                                "EndpointID": "", "Gateway": "", "IPAddress": "",
                                "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                                "GlobalIPv6PrefixLen": 0, "DNSNames": None}
    mounts = [{"Type": "bind", "Source": v.source, "Destination": v.target, "Mode": "",
               "RW": not v.readonly, "Propagation": "rprivate"} for v in cfg.volumes]
    image_id = _opt(cfg, "image_id", None)
    bridge_ip = att is not None and att.driver == "bridge"
    return {
        "Id": c.id,
        "Created": rfc3339(c.created),
        "Path": cmd[0] if cmd else "",
        "Args": cmd[1:],
        "State": {
            "Status": word, "Running": running, "Paused": word == "paused",
            "Restarting": word == "restarting", "OOMKilled": bool(c.oom_killed),
            "Dead": word == "dead", "Pid": (c.pid or 0) if running else 0,
            "ExitCode": c.exit_code or 0, "Error": _opt(c, "error", ""),
            "StartedAt": rfc3339(c.started), "FinishedAt": rfc3339(c.finished),
        },
        "Image": f"sha256:{image_id}" if image_id else "",
        "LogPath": str(c.log_path),
        "Name": "/" + c.name,
        "RestartCount": _opt(c, "restart_count", 0),
        "Platform": "linux",
        "HostConfig": {
            "Binds": [f"{v.source}:{v.target}" + (":ro" if v.readonly else "")
                      for v in cfg.volumes] or None,
            "NetworkMode": cfg.network_mode,
            "PortBindings": bindings,
            "RestartPolicy": restart_policy(c),
            "AutoRemove": cfg.remove,
            "CapAdd": None,  # the whole set minirun grants is under Minirun.Capabilities
            "Privileged": cfg.privileged,
            "ReadonlyRootfs": cfg.read_only,
            "Init": cfg.init,
            "Memory": res.memory or 0,
            "MemorySwap": res.memory_swap or 0,
            "NanoCpus": int(round((res.cpus or 0) * 1e9)),
            "CpuShares": res.cpu_shares or 0,
            "CpusetCpus": res.cpuset_cpus or "",
            "PidsLimit": res.pids_limit,
            "SecurityOpt": (["seccomp=unconfined"] if cfg.seccomp == "unconfined" else
                            ["seccomp=<custom>"] if cfg.seccomp == "custom" else None),
        },
        "Mounts": mounts,
        "Config": {
            "Hostname": cfg.hostname,
            "User": _user(c),
            "Tty": cfg.tty,
            "OpenStdin": cfg.interactive,
            "ExposedPorts": {e: {} for e in _opt(cfg, "exposed_ports", ())} or None,
            "Env": [f"{k}={v}" for k, v in cfg.env.items()],
            "Cmd": list(cfg.command),
            "Image": image_name(c),
            "WorkingDir": cfg.workdir if cfg.workdir != "/" else "",
            "Entrypoint": list(_opt(cfg, "entrypoint", ()) or ()) or None,
            "Labels": labels(c),
        },
        "NetworkSettings": {
            "Bridge": "",
            "SandboxKey": f"/run/netns/{att.netns}" if att and att.netns else "",
            "Ports": ports,
            # Docker fills these for its default network only; minirun containers have
            # one network, so they are filled for any bridge network (as podman does)
            "Gateway": (att.gateway or "") if bridge_ip else "",
            "IPAddress": (att.ip or "") if bridge_ip else "",
            "IPPrefixLen": att.prefixlen if bridge_ip else 0,
            "MacAddress": (att.mac or "") if bridge_ip else "",
            "Networks": networks,
        },
        "Minirun": {
            "HostPid": c.pid if running else None,
            "OciState": c.state,
            "MonitorPid": c.owner_pid,
            "Rootfs": cfg.rootfs,
            "Lowers": list(_opt(cfg, "lowers", ())),
            "Netns": att.netns if att else None,
            "Bridge": att.bridge if att else None,
            "HostVeth": att.veth if att else None,
            "Firewall": att.firewall if att else None,
            "SharesNetnsOf": att.container if att else None,
            "Seccomp": cfg.seccomp,
            "Capabilities": list(cfg.caps),
            "Record": str(c.record_path),
            "TornDown": c.torn_down,
            "Journal": [{"Kind": s.kind, "Done": s.done, "Intent": s.intent}
                        for s in c.journal],
        },
    }


# -- ps ------------------------------------------------------------------------------

class Row(dict):
    """A --format row: its keys are the fields; `methods` are Docker's calls with
    arguments ({{.Label "key"}})."""
    methods: dict = {}


PS_DEFAULT = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t"
              "{{.Ports}}\t{{.Names}}")
PS_DEFAULT_FIELDS = ("ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names")
PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
              "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
              "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
              "Labels": "LABELS", "Label": "LABEL", "Mounts": "MOUNTS",
              "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES", "Pid": "PID",
              "IPAddress": "IP ADDRESS"}


def _ps_default(c, word: str, now: float, trunc: bool) -> tuple[str, ...]:
    """The fields of ps's default table, in its order (PS_DEFAULT); `word` as status_word
    gives it."""
    cmd = " ".join(argv(c))
    return (c.short_id() if trunc else c.id, image_name(c),
            _go_quote(ellipsis(cmd, 20) if trunc else cmd), ago(c.created, now),
            status_text(c, word, now), ports_text(c), c.name)


def ps_table(chosen, now: float, trunc: bool = True) -> list[str]:
    """`ps` without --format: what PS_DEFAULT renders through the template, built
    directly and with only its seven fields (at 1000 containers the whole Row and a
    template run per container were ~20% of ps)."""
    titles = [PS_HEADERS[f] for f in PS_DEFAULT_FIELDS]
    rows = ["\t".join(_ps_default(c, status_word(c, w), now, trunc)) for c, w in chosen]
    return tabwrite(["\t".join(titles)] + rows)


def ps_row(c, word: str, now: float, trunc: bool = True) -> Row:
    word = status_word(c, word)
    labs = labels(c)
    ident, image, command, running_for, status, ports, names = _ps_default(c, word, now, trunc)
    r = Row(ID=ident, Image=image, Command=command,
            CreatedAt=local_time(c.created), RunningFor=running_for,
            Ports=ports, State=word, Status=status,
            Size="", Names=names,
            Labels=",".join(f"{k}={v}" for k, v in labs.items()),
            Mounts=",".join(v.source for v in c.config.volumes),
            Networks=",".join(network_names(c)), LocalVolumes="0",
            # minirun's own: the host PID and address a learner looks for
            Pid=c.pid if word in ("running", "paused") and c.pid else "",
            IPAddress=(c.network.ip or "") if c.network else "")
    r.methods = {"Label": lambda k: labs.get(k, "")}
    return r


PS_FILTERS = ("id", "name", "label", "status", "ancestor", "network", "exited")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def parse_filters(specs) -> dict[str, list[str]]:
    """`--filter key=value` (repeatable) -> {key: [values]}; unknown keys refused."""
    from .errors import UsageError
    out: dict[str, list[str]] = {}
    for s in specs:
        key, sep, value = s.partition("=")
        key = key.strip().lower()
        if not sep:
            raise UsageError(f"bad format of filter (expected name=value): {s}")
        if key not in PS_FILTERS:
            raise UsageError(f"invalid filter '{key}'")
        if key == "status" and value not in STATUSES:
            raise UsageError(f"invalid filter 'status={value}' (expected one of "
                             f"{', '.join(STATUSES)})")
        if key == "exited" and not value.lstrip("-").isdigit():
            raise UsageError(f"invalid filter 'exited={value}'")
        out.setdefault(key, []).append(value)
    return out


def _name_matches(term: str, name: str) -> bool:
    try:
        return any(re.search(term, n) for n in (name, "/" + name))
    except re.error:
        return term in name


def _ancestor_matches(term: str, c) -> bool:
    img = _opt(c.config, "image", None) or ""
    iid = _opt(c.config, "image_id", None) or ""
    t = term[7:] if term.startswith("sha256:") else term
    if iid and len(t) >= 3 and iid.startswith(t):
        return True
    full = term if ":" in term.rsplit("/", 1)[-1] else term + ":latest"
    have = img if ":" in img.rsplit("/", 1)[-1] else img + ":latest"
    return bool(img) and (img == term or have == full) or c.config.rootfs == term


def matches(c, word: str, filters: dict[str, list[str]]) -> bool:
    """Docker's rule: values of one key are ORed, keys are ANDed."""
    tests = {
        "id": lambda v: c.id.startswith(v),
        "name": lambda v: _name_matches(v, c.name),
        "label": lambda v: (lambda k, sep, val: k in labels(c) and
                            (not sep or labels(c)[k] == val))(*v.partition("=")),
        "status": lambda v: status_word(c, word) == v,
        "ancestor": lambda v: _ancestor_matches(v, c),
        "network": lambda v: v in network_names(c),
        "exited": lambda v: word == "exited" and (c.exit_code or 0) == int(v),
    }
    return all(any(tests[k](v) for v in vals) for k, vals in filters.items())


def select(containers, filters, show_all: bool, last: int | None):
    """ps's selection, newest first: running ones (all with -a, -n, -l or a status
    filter), filtered, the last `last` created."""
    from .state import docker_status
    if last is not None and last <= 0:  # Docker's -n 0 / -n -1: no limit
        last = None
    pairs = sorted(((c, docker_status(c)) for c in containers),
                   key=lambda p: p[0].created, reverse=True)
    show_all = show_all or last is not None or "status" in filters or "exited" in filters
    out = [(c, w) for c, w in pairs
           if (show_all or status_word(c, w) in ("running", "paused", "restarting"))
           and matches(c, w, filters)]
    return out[:last] if last is not None else out


# -- networks ------------------------------------------------------------------------

NETWORK_LS_DEFAULT = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
NETWORK_LS_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER",
                      "Scope": "SCOPE", "IPv6": "IPV6", "Internal": "INTERNAL",
                      "Labels": "LABELS", "CreatedAt": "CREATED AT", "Subnet": "SUBNET",
                      "Gateway": "GATEWAY", "Bridge": "BRIDGE", "Mode": "MODE",
                      "Containers": "CONTAINERS"}


def network_id(net) -> str:
    from .state import sha256_hex
    return sha256_hex(f"network:{net.name}")


def network_row(net, n_containers: int, trunc: bool = True) -> Row:
    nid = network_id(net)
    return Row(ID=nid[:12] if trunc else nid, Name=net.name, Driver=net.driver,
               Scope="local", IPv6="false", Internal="false", Labels="",
               CreatedAt=local_time(net.created) if net.created else "",
               Subnet=net.subnet, Gateway=net.gateway, Bridge=net.bridge, Mode=net.mode,
               Containers=str(n_containers))


def network_inspect(net, containers) -> dict:
    """Docker's `network inspect` object; minirun's own facts under "Minirun"."""
    from .network.networks import OPT_BRIDGE_NAME, OPT_GATEWAY_MODE
    members, ours = {}, {}
    for c in containers:
        # its attachment to this network: the first one, or one of `network connect`
        att = next((a for a in [c.network, *_opt(c, "networks", [])]
                    if a is not None and (a.network or "bridge") == net.name), c.network)
        members[c.id] = {"Name": c.name, "EndpointID": "", "MacAddress": att.mac or "",
                         "IPv4Address": f"{att.ip}/{att.prefixlen}" if att.ip else "",
                         "IPv6Address": ""}
        ours[c.name] = {"HostVeth": att.veth, "Netns": att.netns}
    return {
        "Name": net.name, "Id": network_id(net), "Created": rfc3339(net.created),
        "Scope": "local", "Driver": net.driver, "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": {},
                 "Config": [{"Subnet": net.subnet, "Gateway": net.gateway}]},
        "Internal": False, "Attachable": False, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
        "Containers": members,
        "Options": {OPT_BRIDGE_NAME: net.bridge, OPT_GATEWAY_MODE: net.mode},
        "Labels": {},
        "Minirun": {"Bridge": net.bridge, "GatewayMode": net.mode,
                    "Containers": ours},
    }


# -- --format --------------------------------------------------------------------------

class _Header(dict):
    """The row a table's header is rendered from: every field is its column title."""

    def __init__(self, titles):
        super().__init__()
        self.titles = titles

    def __contains__(self, key):
        return True

    def __missing__(self, key):
        return _Title(self.titles.get(key) or key.upper())


class _Title(str):
    def __call__(self, *args):  # {{.Label "x"}} in a header
        return self


def expand_escapes(fmt: str) -> str:
    """Docker's formatter reads the two characters \\t and \\n of a shell string as a
    tab and a newline."""
    return fmt.replace("\\t", "\t").replace("\\n", "\n")


def parse_format(fmt: str) -> tuple[bool, gotemplate.Template | None]:
    """(table?, template); the template is None for `json`. Raises TemplateError."""
    table = fmt.startswith("table")
    if table:
        fmt = fmt[len("table"):]
    fmt = expand_escapes(fmt.strip(" "))
    if not table and fmt.strip() == "json":
        return False, None
    return table, gotemplate.parse(fmt)


def render_rows(fmt: str | None, rows, default: str, titles: dict,
                quiet_field: str | None = None, quiet: bool = False) -> list[str]:
    """Rows through --format: Docker's table (a header, columns aligned as its
    tabwriter does), `json` (one object a line), or a template (one line a row)."""
    import json
    if quiet and quiet_field:  # -q wins over --format, as Docker's
        return [str(r[quiet_field]) for r in rows]
    fmt = fmt or default
    if fmt == "table":
        fmt = default
    table, tmpl = parse_format(fmt)
    if tmpl is None:
        return [json.dumps(dict(r), ensure_ascii=False, separators=(",", ":")) for r in rows]
    out = [tmpl.render(r) for r in rows]
    if not table:
        return out
    return tabwrite([tmpl.render(_Header(titles))] + out)


def tabwrite(lines: list[str], minwidth: int = 10, padding: int = 3) -> list[str]:
    """Go's tabwriter as Docker configures it (minwidth 10, padding 3): cells end at a
    tab; a column is as wide as its widest cell plus the padding; a line's last cell
    is not padded."""
    split = [line.split("\t") for line in "\n".join(lines).split("\n")]
    widths: dict[int, int] = {}
    for cells in split:
        for i, cell in enumerate(cells[:-1]):
            widths[i] = max(widths.get(i, 0), max(len(cell) + padding, minwidth))
    return ["".join(cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])) + cells[-1]
            for cells in split]
