"""`minirun network ...`: thin wrappers over network/networks.py (`system prune`: cli_system.py)."""
from __future__ import annotations

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
@click.option("--routed", is_flag=True,
              help="No NAT: other hosts with a route to the subnet via this host reach the "
                   "published container ports at the containers' own addresses.")
@click.option("-o", "--opt", "opts", multiple=True, metavar="KEY=VALUE",
              help="com.docker.network.bridge.gateway_mode_ipv4=nat|routed|nat-unprotected, "
                   "com.docker.network.bridge.name=IFNAME.")
@click.argument("name")
@click.pass_context
def create(ctx, subnet, gateway, bridge, routed, opts, name):
    """Create a network: its record, then its bridge, gateway address and firewall rules."""
    from .network.networks import parse_options
    mode, bridge = parse_options(opts, routed, bridge)
    net = _store(ctx).create(name, subnet, gateway, bridge, mode=mode,
                             firewall=ctx.obj["firewall"])
    click.echo(net.name)


@network.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only network IDs.")
@click.option("--no-trunc", is_flag=True, help="Full network IDs.")
@click.option("--format", "fmt", help="Go template (Docker's subset), 'table TEMPLATE' or "
              "'json'; fields .ID .Name .Driver .Scope .Subnet .Gateway .Bridge .Mode "
              ".Containers.")
@click.pass_context
def ls(ctx, quiet, no_trunc, fmt):
    """List networks: minirun's columns by default (bridge, subnet, gateway, mode,
    containers); Docker's with --format "table {{.ID}}\\t{{.Name}}\\t{{.Driver}}"."""
    from .cli_view import echo_lines, template_errors
    from .docker_view import network_row, parse_format, render_rows
    with template_errors():
        if fmt:
            parse_format(fmt)
        store = _store(ctx)
        nets = store.all()
        if not any(n.name == "bridge" for n in nets):
            nets.insert(0, store.default())
        rows = [network_row(n, len(store.containers_of(n)), trunc=not no_trunc) for n in nets]
        echo_lines(render_rows(fmt, rows, LS_DEFAULT, LS_TITLES, "ID", quiet))


LS_DEFAULT = "table {{.Name}}\t{{.Bridge}}\t{{.Subnet}}\t{{.Gateway}}\t{{.Mode}}\t{{.Containers}}"
LS_TITLES = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
             "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS",
             "CreatedAt": "CREATED AT", "Subnet": "SUBNET", "Gateway": "GATEWAY",
             "Bridge": "BRIDGE", "Mode": "MODE", "Containers": "CONTAINERS"}


@network.command("inspect")
@click.option("-f", "--format", "fmt", help="Go template applied to each network.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect(ctx, fmt, names):
    """Networks as Docker's network inspect shows them (a JSON array); minirun's own
    facts (bridge, gateway mode, each container's host veth) under "Minirun"."""
    from .cli_view import print_inspected, template_errors
    from .docker_view import network_inspect, parse_format
    store = _store(ctx)
    with template_errors():
        tmpl = parse_format(fmt.strip())[1] if fmt else None
        found, missing = [], []
        for name in names:
            try:
                net = store.get(name)
            except MinirunError as e:
                missing.append(str(e))
                continue
            found.append(network_inspect(net, store.containers_of(net)))
    print_inspected(ctx, found, missing, tmpl)


@network.command("diagram")
@click.option("--format", "fmt", type=click.Choice(["text", "dot", "svg", "png"]),
              default="text", show_default=True,
              help="text for the terminal; dot, svg, png through Graphviz.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to FILE instead of standard output (svg and png need one unless "
                   "standard output is not a terminal).")
@click.argument("name", required=False)
@click.pass_context
def diagram(ctx, fmt, output, name):
    """Draw the network topology from live kernel state: host interfaces, bridges, veth
    cables and the namespaces at their ends, addresses, routes, published ports, modes.
    With NAME, only that network's bridge and what is plugged into it."""
    import sys
    from .network import diagram as d
    topo = d.read_topology(ctx.obj["paths"])
    if name is not None:
        net = _store(ctx).get(name)
        topo = d.restrict(topo, net.name, net.bridge, net.subnet)
    data = d.render(topo, fmt)
    if output:
        with open(output, "wb") as f:
            f.write(data)
    elif fmt in ("svg", "png") and sys.stdout.isatty():
        from .errors import UsageError
        raise UsageError(f"--format {fmt} writes a picture: give -o FILE")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


@network.command("connect")
@click.option("--alias", "aliases", multiple=True, help="Another name on the network.")
@click.option("--ip", help="A static address on the network.")
@click.argument("name")
@click.argument("container")
@click.pass_context
def connect(ctx, aliases, ip, name, container):
    """Plug a running container into one more network (a second veth, an address from
    the network, its names in the network's DNS)."""
    from .network.connect import connect as do
    do(ctx.obj["paths"], container, name, tuple(aliases), ip)


@network.command("disconnect")
@click.argument("name")
@click.argument("container")
@click.pass_context
def disconnect(ctx, name, container):
    """Unplug a container from a network it was connected to."""
    from .network.connect import disconnect as do
    do(ctx.obj["paths"], container, name)


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
    from .heal import check, ensure_idle
    restored = check(ctx.obj["paths"], force=True, quiet=True)
    # networks made by `network create` whose bridge is gone (a reboot empties /run)
    restored += ensure_idle(ctx.obj["paths"], ctx.obj["firewall"])
    for name in restored:
        click.echo(name)


@network.command("prune")
@click.pass_context
def prune(ctx):
    """Remove every network with no container attached, with its bridge and rules (the
    default one stays)."""
    from .prune import prune_networks
    names, failed = prune_networks(ctx.obj["paths"])
    for name in names:
        click.echo(name)
    for _name, e in failed:
        click.echo(f"minirun: {e}", err=True)
    if failed:
        ctx.exit(failed[-1][1].exit_code)
