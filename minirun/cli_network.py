"""`minirun network ...` and `minirun system prune`: thin wrappers over network/networks.py."""
from __future__ import annotations

import json
from dataclasses import asdict

import click

from .errors import MinirunError


def _store(ctx):
    from .network.networks import NetworkStore
    return NetworkStore(ctx.obj["paths"])


@click.group()
def network():
    """Manage networks (a bridge, a subnet, a gateway)."""


@network.command("create")
@click.option("--subnet", help="CIDR, e.g. 192.168.15.0/24 [a free 10.x.y.0/24].")
@click.option("--gateway", help="The bridge's address [first address of the subnet].")
@click.option("--bridge", help="Bridge interface name [mr-NAME].")
@click.argument("name")
@click.pass_context
def create(ctx, subnet, gateway, bridge, name):
    net = _store(ctx).create(name, subnet, gateway, bridge)
    click.echo(net.name)


@network.command("ls")
@click.pass_context
def ls(ctx):
    store = _store(ctx)
    rows = [("NAME", "BRIDGE", "SUBNET", "GATEWAY", "CONTAINERS")]
    nets = store.all()
    if not any(n.name == "bridge" for n in nets):
        nets.insert(0, store.default())
    for n in nets:
        rows.append((n.name, n.bridge, n.subnet, n.gateway, str(len(store.containers_of(n)))))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


@network.command("inspect")
@click.argument("name")
@click.pass_context
def inspect(ctx, name):
    store = _store(ctx)
    net = store.get(name)
    containers = {}
    for c in store.containers_of(net):
        att = c.network
        containers[c.name] = {"id": c.id, "ip": att.ip, "mac": att.mac, "veth": att.veth,
                              "netns": att.netns, "ports": [p._asdict() for p in att.ports]}
    click.echo(json.dumps(dict(asdict(net), containers=containers), indent=2, sort_keys=True))


@network.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm(ctx, names):
    failed = None
    for name in names:
        try:
            _store(ctx).remove(name)
            click.echo(name)
        except MinirunError as e:
            click.echo(f"minirun: {e}", err=True)
            failed = e
    if failed:
        ctx.exit(failed.exit_code)


@network.command("reload")
@click.pass_context
def reload(ctx):
    """Restore minirun's firewall rules for every active network (after the host's
    firewall was reloaded or flushed), with every running container's published ports."""
    from .heal import check
    for name in check(ctx.obj["paths"], force=True, quiet=True):
        click.echo(name)


@network.command("prune")
@click.pass_context
def prune(ctx):
    """Remove every network with no container attached (the default one stays)."""
    store = _store(ctx)
    for n in store.all():
        if n.name != "bridge" and not store.containers_of(n):
            store.remove(n.name)
            click.echo(n.name)


@click.group()
def system():
    """Whole-system maintenance."""


@system.command("prune")
@click.pass_context
def system_prune(ctx):
    """Reclaim everything of containers whose process is gone (after a crash or reboot)."""
    from .lifecycle import prune_orphans, reclaim
    for name in reclaim(ctx.obj["paths"]):
        click.echo(f"reclaimed {name}")
    failures = prune_orphans(ctx.obj["paths"])
    for f in failures:
        click.echo(f"minirun: prune: {f}", err=True)
    if failures:
        ctx.exit(125)
