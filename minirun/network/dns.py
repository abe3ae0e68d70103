"""The name files every container gets: /etc/hosts, /etc/resolv.conf, /etc/hostname (pure),
and the checks of the options that shape them (--dns, --dns-search, --dns-option,
--add-host, --network-alias).

Where names come from, by network (as in Docker):
  bridge (default)   /etc/hosts only: the container's own name, localhost and --add-host;
                     resolv.conf lists the host's resolvers (or --dns)
  a named network    resolv.conf points at the network's gateway, where aardvark-dns
                     (aardvark.py) answers with the names and aliases of the network's
                     containers and forwards other names to the host's resolvers (or to
                     --dns)
"""
from __future__ import annotations

import ipaddress
import re

from ..errors import UsageError

# Used when the host only lists loopback resolvers (systemd-resolved, dnsmasq on
# 127.0.0.x), which a container cannot reach from its own namespace.
FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")
SEARCH_DOMAIN = "dns.minirun"  # a named network's names: NAME and NAME.dns.minirun
HOST_GATEWAY = "host-gateway"  # --add-host NAME:host-gateway: the network's gateway
_LABEL = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,62}"
_NAME_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*\.?$")


def render_hosts(hostname: str, entries: list[tuple[str, str]],
                 extra: list[tuple[str, str]] = ()) -> str:
    """localhost, the --add-host lines (`extra`: (name, ip)), then the container's own."""
    lines = ["127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{ip}\t{name}" for name, ip in extra]
    lines += [f"{ip}\t{names}" for ip, names in entries]
    if not entries:
        lines.append(f"127.0.1.1\t{hostname}")
    return "\n".join(lines) + "\n"


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.split("%")[0]).is_loopback
    except ValueError:
        return False


def render_resolv(host_resolv: str, share_host_net: bool = False,
                  servers: tuple[str, ...] = (), search: tuple[str, ...] = (),
                  options: tuple[str, ...] = (), comment: str | None = None,
                  domain: str | None = None) -> str:
    """The host's resolv.conf without loopback nameservers (unless the container shares
    the host's network), falling back to public resolvers if nothing is left. `servers`
    (--dns, or the network's aardvark-dns) replace the host's nameservers, `search`
    (--dns-search) its search line, `options` (--dns-option) its options line. `domain`
    (a named network's, which its aardvark-dns answers for) goes first in the search
    line: short names are tried there first, as podman does."""
    out, kept, host_search = [], 0, []
    for line in host_resolv.splitlines():
        words = line.split()
        key = words[0] if words else ""
        if key == "nameserver" and len(words) > 1:
            if servers or (_is_loopback(words[1]) and not share_host_net):
                continue
            kept += 1
        elif key in ("search", "domain") and (search or domain):
            host_search += words[1:]
            continue
        elif key == "options" and options:
            continue
        out.append(line)
    if comment:
        out.append(f"# minirun: {comment}")
    if servers:
        out += [f"nameserver {ns}" for ns in servers]
    elif kept == 0:
        out.append("# minirun: the host has only loopback nameservers; using fallbacks")
        out += [f"nameserver {ns}" for ns in FALLBACK_NAMESERVERS]
    if search == (".",):  # Docker: --dns-search . means no search line
        search = ()
    elif not search:
        search = tuple(host_search)
    if domain:
        search = (domain, *[d for d in search if d != domain])
    if search:
        out.append("search " + " ".join(search))
    if options:
        out.append("options " + " ".join(options))
    return "\n".join(out).strip("\n") + "\n"


# -- checks of the options (before anything is created) ------------------------------

def check_ip(value: str, flag: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise UsageError(f"invalid {flag} {value!r}: not an IP address") from None


def check_name(value: str, flag: str) -> str:
    if not _NAME_RE.match(value) or len(value) > 253:
        raise UsageError(f"invalid {flag} {value!r}: not a host name")
    return value


def parse_add_host(value: str) -> tuple[str, str]:
    """NAME:IP (Docker's; NAME=IP too), IP may be `host-gateway`."""
    sep = "=" if "=" in value else ":"
    name, _, ip = value.partition(sep)
    if not ip:
        raise UsageError(f"invalid --add-host {value!r}: expected NAME:IP")
    check_name(name, "--add-host name")
    if ip != HOST_GATEWAY:
        ip = check_ip(ip.strip("[]"), "--add-host address")
    return name, ip


def check_option(value: str) -> str:
    if not value or any(ch.isspace() for ch in value):
        raise UsageError(f"invalid --dns-option {value!r}")
    return value


def resolve_hosts(extra, gateway: str | None) -> list[tuple[str, str]]:
    """--add-host entries with host-gateway replaced by the network's gateway."""
    out = []
    for name, ip in extra:
        if ip == HOST_GATEWAY:
            if gateway is None:
                continue  # no network of its own: nothing to point at
            ip = gateway
        out.append((name, ip))
    return out
