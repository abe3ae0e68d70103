"""The name files every container gets: /etc/hosts, /etc/resolv.conf, /etc/hostname (pure)."""
from __future__ import annotations

import ipaddress

# Used when the host only lists loopback resolvers (systemd-resolved, dnsmasq on
# 127.0.0.x), which a container cannot reach from its own namespace.
FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")


def render_hosts(hostname: str, entries: list[tuple[str, str]]) -> str:
    lines = ["127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{ip}\t{names}" for ip, names in entries]
    if not entries:
        lines.append(f"127.0.1.1\t{hostname}")
    return "\n".join(lines) + "\n"


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.split("%")[0]).is_loopback
    except ValueError:
        return False


def render_resolv(host_resolv: str, share_host_net: bool = False) -> str:
    """The host's resolv.conf without loopback nameservers (unless the container shares
    the host's network), falling back to public resolvers if nothing is left."""
    out, servers = [], 0
    for line in host_resolv.splitlines():
        words = line.split()
        if words and words[0] == "nameserver" and len(words) > 1:
            if _is_loopback(words[1]) and not share_host_net:
                continue
            servers += 1
        out.append(line)
    if servers == 0:
        out.append("# minirun: the host has only loopback nameservers; using fallbacks")
        out += [f"nameserver {ns}" for ns in FALLBACK_NAMESERVERS]
    return "\n".join(out).strip("\n") + "\n"
