"""Other software's nftables forward chains that drop, and minirun's accepts in them.

A forwarded packet must be accepted by EVERY base chain on the forward hook: an
accept in minirun's own table does not override `policy drop` in an
administrator's `table inet filter` (or an nft-made `ip filter FORWARD`). So
setup_network finds such chains -- hook forward, policy drop, family ip or inet,
any table but `ip minirun`, and not the tables iptables-nft manages when the
iptables tools are there (those get iptables-restore'd compatibility rules, see
`iptables.render_forward_compat_setup`) -- and inserts at the top of each, per
network:

    oifname "<bridge>" ct state established,related accept  comment "minirun:<owner>:net:<name>"
    oifname "<bridge>" ct status dnat accept                 (same comment)
    iifname "<bridge>" accept                                (same comment)

i.e. everything leaving the bridge (egress and same-bridge traffic); into it only
replies and published (DNATed) traffic; for a routed or nat-unprotected network
`oifname "<bridge>" accept` and `iifname "<bridge>" accept` instead. minirun's own forward chain still does
the isolation. teardown_network deletes exactly the rules carrying that comment.

Everything here reads one terse listing (`nft -j -t list ruleset`: no set
elements, so it stays well under a millisecond with big port maps).
"""
from __future__ import annotations

import json
import re

from minirun.errors import MinirunError
from minirun.network.firewall.base import NetworkInfo

FAMILIES = ("ip", "inet")
# The tables iptables-nft keeps in family ip; with the iptables tools present they are
# iptables', and the iptables-restore compatibility path handles `filter`.
IPTABLES_NFT_TABLES = ("filter", "mangle", "raw", "nat", "security")
OWN_TABLE = ("ip", "minirun")
_PLAIN = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")

ChainKey = tuple  # (family, table, chain)


class Ruleset:
    """`nft -j -t list ruleset`, indexed."""

    def __init__(self):
        self.chains: dict[ChainKey, dict] = {}
        self.rules: list[dict] = []
        self.objects: list[dict] = []

    def rules_of(self, key: ChainKey) -> list[dict]:
        return [r for r in self.rules if (r["family"], r["table"], r["chain"]) == key]

    def table_objects(self, family: str, table: str) -> list[dict]:
        """The chains and rules of one table, as the listing gives them."""
        out = []
        for obj in self.objects:
            body = obj.get("chain") or obj.get("rule")
            if body and body.get("family") == family and body.get("table") == table:
                out.append(obj)
        return out


def parse_ruleset(listing: str) -> Ruleset:
    rs = Ruleset()
    if not listing.strip():
        return rs
    for obj in json.loads(listing).get("nftables", []):
        if "chain" in obj:
            c = obj["chain"]
            rs.chains[(c["family"], c["table"], c["name"])] = c
            rs.objects.append(obj)
        elif "rule" in obj:
            rs.rules.append(obj["rule"])
            rs.objects.append(obj)
    return rs


def tag(net: NetworkInfo, owner: str) -> str:
    return f"minirun:{owner}:net:{net.name}"


def drop_chains(rs: Ruleset, iptables_tools: bool) -> list[ChainKey]:
    """The foreign forward base chains whose policy is drop."""
    out = []
    for key, c in rs.chains.items():
        family, table, _ = key
        if c.get("hook") != "forward" or c.get("policy") != "drop" or family not in FAMILIES:
            continue
        if (family, table) == OWN_TABLE:
            continue
        if iptables_tools and family == "ip" and table in IPTABLES_NFT_TABLES:
            continue
        out.append(key)
    return out


def _where(key: ChainKey) -> str:
    if not all(_PLAIN.match(part) for part in key):
        raise MinirunError(f"firewall: cannot add minirun's accepts to the forward chain "
                           f"{' '.join(key)!r} (its policy drops minirun's traffic): "
                           f"unusual name; open it for the bridges yourself")
    return " ".join(key)


def render_accepts(net: NetworkInfo, owner: str, key: ChainKey) -> str:
    """The network's accepts, inserted at the top of a foreign chain (so the last line
    ends up first)."""
    where, b, t = _where(key), net.bridge, tag(net, owner)
    if net.mode != "nat":  # routed access: minirun's own forward chain decides what enters
        return (f'insert rule {where} iifname "{b}" accept comment "{t}"\n'
                f'insert rule {where} oifname "{b}" accept comment "{t}"\n')
    return (f'insert rule {where} iifname "{b}" accept comment "{t}"\n'
            f'insert rule {where} oifname "{b}" ct status dnat accept comment "{t}"\n'
            f'insert rule {where} oifname "{b}" ct state established,related accept '
            f'comment "{t}"\n')


def has_accepts(rs: Ruleset, net: NetworkInfo, owner: str, key: ChainKey) -> bool:
    t = tag(net, owner)
    return any(r.get("comment") == t for r in rs.rules_of(key))


def render_setup(net: NetworkInfo, owner: str, rs: Ruleset, iptables_tools: bool) -> str:
    """The accepts missing in the foreign drop chains."""
    return "".join(render_accepts(net, owner, key) for key in drop_chains(rs, iptables_tools)
                   if not has_accepts(rs, net, owner, key))


def render_teardown(net: NetworkInfo, owner: str, rs: Ruleset) -> str:
    """Delete every rule outside minirun's table carrying the network's comment."""
    t = tag(net, owner)
    return "".join(f"delete rule {r['family']} {r['table']} {r['chain']} handle {r['handle']}\n"
                   for r in rs.rules
                   if r.get("comment") == t and (r["family"], r["table"]) != OWN_TABLE)


def intact(rs: Ruleset, nets: list[NetworkInfo], owner: str, iptables_tools: bool) -> bool:
    return all(has_accepts(rs, net, owner, key)
               for key in drop_chains(rs, iptables_tools) for net in nets)
