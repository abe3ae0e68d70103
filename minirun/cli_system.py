"""`minirun system prune|df` and `minirun completion bash|zsh|fish`: thin wrappers over
prune.py and completion.py."""
from __future__ import annotations

import sys

import click

PRUNED = ["all stopped containers", "all networks not used by at least one container"]


@click.group()
def system():
    """Whole-system maintenance."""


@system.command("prune")
@click.option("-a", "--all", "all_", is_flag=True,
              help="Remove every image no container uses, not only dangling ones.")
@click.option("--volumes", is_flag=True, help="Remove the volumes no container uses too.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.pass_context
def prune(ctx, all_, volumes, force):
    """Remove stopped containers, unused networks (not the default), dangling images
    (-a: all unused images) and with --volumes unused volumes; first reclaim what crashed
    containers left behind. Without -f it asks; without a terminal to ask on, it
    reclaims the crash leftovers only and says so."""
    from . import prune as p
    from .images.store import human_size
    paths = ctx.obj["paths"]
    names, errors = p.leftovers(paths)
    for name in names:
        click.echo(f"reclaimed {name}")
    what = PRUNED + ["all images without at least one container associated to them"
                     if all_ else "all dangling images"]
    if volumes:
        what.append("all volumes not used by at least one container")
    if not force and not sys.stdin.isatty():
        click.echo("minirun: system prune: only crash leftovers were reclaimed; removing "
                   "stopped containers, networks and images asks first: give -f", err=True)
    elif p.confirm(force, what):
        ids, csize, cerr = p.prune_containers(paths)
        nets, nfailed = p.prune_networks(paths)
        nerr = [f"network {name}: {e}" for name, e in nfailed]
        lines, isize, ierr = p.prune_images(paths, all_)
        vols, vsize = p.prune_volumes(paths) if volumes else ([], 0)
        errors += cerr + nerr + ierr
        for title, items in (("Deleted Containers:", ids), ("Deleted Networks:", nets),
                             ("Deleted Volumes:", vols), ("Deleted Images:", lines)):
            if items:
                click.echo(title)
                for i in items:
                    click.echo(i)
                click.echo()
        click.echo(f"Total reclaimed space: {human_size(csize + isize + vsize)}")
    for f in errors:
        click.echo(f"minirun: prune: {f}", err=True)
    if errors:
        ctx.exit(125)


@system.command("df")
@click.pass_context
def df(ctx):
    """Disk use of images, containers and volumes, and how much of it is reclaimable."""
    from .images.store import human_size
    from .prune import system_df
    rows = [("TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE")]
    for kind, total, active, size, reclaim in system_df(ctx.obj["paths"]):
        pct = f" ({round(100 * reclaim / size)}%)" if size else ""
        rows.append((kind, str(total), str(active), human_size(size),
                     human_size(reclaim) + pct))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        click.echo("   ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell):
    """Print the shell completion script: eval "$(minirun completion bash)". It completes
    commands, options, and container, image, network and volume names."""
    from .completion import script
    click.echo(script(shell))


def add_to(main) -> None:
    from .completion import attach
    main.add_command(system)
    main.add_command(completion)
    attach(main)
