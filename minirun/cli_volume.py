"""`minirun volume create|ls|rm|inspect|prune`: thin wrappers over volumes.py."""
from __future__ import annotations

import datetime
import json

import click

from .errors import MinirunError


def _store(ctx):
    from .volumes import VolumeStore
    return VolumeStore(ctx.obj["paths"])


@click.group()
def volume():
    """Manage named volumes (directories under the state root that outlive containers)."""


@volume.command("create")
@click.option("-l", "--label", "labels", multiple=True, metavar="KEY=VALUE")
@click.option("-d", "--driver", default="local", show_default=True,
              help="Only local (a directory) is supported.")
@click.argument("name")
@click.pass_context
def create(ctx, labels, driver, name):
    """Create a volume (nothing happens if it exists, as in Docker)."""
    from .runextras import parse_labels
    if driver != "local":
        from .errors import UsageError
        raise UsageError(f"volume driver {driver!r} is not supported (only local)")
    click.echo(_store(ctx).create(name, parse_labels(labels, ()))["name"])


@volume.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only names.")
@click.pass_context
def ls(ctx, quiet):
    vols = _store(ctx).all()
    if quiet:
        for v in vols:
            click.echo(v["name"])
        return
    rows = [("DRIVER", "VOLUME NAME")] + [("local", v["name"]) for v in vols]
    width = max(len(r[0]) for r in rows)
    for r in rows:
        click.echo(f"{r[0].ljust(width)}     {r[1]}")


def docker_shape(v: dict) -> dict:
    created = datetime.datetime.fromtimestamp(v["created"], datetime.timezone.utc)
    return {"CreatedAt": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "Driver": "local", "Labels": v.get("labels") or {}, "Mountpoint": v["mountpoint"],
            "Name": v["name"], "Options": {}, "Scope": "local"}


@volume.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect(ctx, names):
    """Volumes as a JSON array, Docker's keys."""
    store = _store(ctx)
    click.echo(json.dumps([docker_shape(store.lookup(n)) for n in names], indent=4))


@volume.command("rm")
@click.option("-f", "--force", is_flag=True, help="No error for a missing volume.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm(ctx, force, names):
    """Remove volumes; one a container (running or not) uses is refused."""
    failed = None
    for n in names:
        try:
            _store(ctx).remove(n, force)
            click.echo(n)
        except MinirunError as e:
            click.echo(f"minirun: {e}", err=True)
            failed = e
    if failed:
        ctx.exit(failed.exit_code)


@volume.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.pass_context
def prune(ctx, force):
    """Remove every volume no container uses."""
    from .prune import confirm, prune_volumes
    from .images.store import human_size
    if not confirm(force, ["all volumes not used by at least one container"]):
        return
    names, size = prune_volumes(ctx.obj["paths"])
    if names:
        click.echo("Deleted Volumes:")
        for n in names:
            click.echo(n)
        click.echo()
    click.echo(f"Total reclaimed space: {human_size(size)}")


def add_to(main) -> None:
    main.add_command(volume)
