"""`minirun wait|rename|pause|unpause|cp|start|restart|attach`: the lifecycle verbs a Docker
user expects (the logic is in manage.py, pause.py, copy.py, restart.py and
attach.py)."""
from __future__ import annotations

import click

from .errors import MinirunError


def _each(ctx, refs, do) -> None:
    """Docker's way with several containers: go on after an error, print it, and exit
    with the last error's code."""
    failed = None
    for ref in refs:
        try:
            click.echo(do(ref))
        except MinirunError as e:
            click.echo(f"minirun: {e}", err=True)
            failed = e
    if failed:
        ctx.exit(failed.exit_code)


@click.command()
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def wait(ctx, containers):
    """Block until containers stop, then print their exit codes."""
    from .manage import wait as wait_
    _each(ctx, containers, lambda ref: wait_(ctx.obj["paths"], ref))


@click.command()
@click.argument("container")
@click.argument("new_name")
@click.pass_context
def rename(ctx, container, new_name):
    """Rename a container."""
    from .manage import rename as rename_
    rename_(ctx.obj["paths"], container, new_name)


@click.command()
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def pause(ctx, containers):
    """Suspend every process of containers (the cgroup freezer)."""
    from .pause import pause as pause_
    _each(ctx, containers, lambda ref: pause_(ctx.obj["paths"], ref).name)


@click.command()
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def unpause(ctx, containers):
    """Resume every process of paused containers."""
    from .pause import unpause as unpause_
    _each(ctx, containers, lambda ref: unpause_(ctx.obj["paths"], ref).name)


@click.command()
@click.option("-a", "--archive", is_flag=True, help="Keep the source's uid/gid.")
@click.option("-L", "--follow-link", is_flag=True, help="Follow a symbolic link SRC.")
@click.argument("src")
@click.argument("dest")
@click.pass_context
def cp(ctx, archive, follow_link, src, dest):
    """Copy files between a container and the host: CONTAINER:SRC DEST or SRC
    CONTAINER:DEST (`-` is a tar stream on stdin or stdout), with docker cp's rules."""
    import sys
    from .copy import copy
    copy(ctx.obj["paths"], src, dest, archive, follow_link, stdin=sys.stdin,
         stdout=sys.stdout)


@click.command()
@click.option("-a", "--attach", "attach_", is_flag=True,
              help="Then attach: its terminal (-t), else follow its output; exit with "
                   "its code.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def start(ctx, attach_, containers):
    """Start exited containers again (same name, writable layer and config; the same
    address where it is free), detached."""
    from .restart import start as start_
    if attach_:
        if len(containers) != 1:
            raise MinirunError("start -a takes one container")
        from .attach import DEFAULT_KEYS, attach as attach__, follow, parse_keys
        from .oplog import size_of
        from .state import lookup
        offset = size_of(lookup(ctx.obj["paths"], containers[0]).log_path)
        c = start_(ctx.obj["paths"], containers[0], ctx.obj["firewall"])
        if c.config.tty and c.config.detach:
            ctx.exit(attach__(ctx.obj["paths"], c.id, parse_keys(DEFAULT_KEYS)))
        ctx.exit(follow(ctx.obj["paths"], c, offset))
    _each(ctx, containers,
          lambda ref: start_(ctx.obj["paths"], ref, ctx.obj["firewall"]).name)


@click.command()
@click.option("-t", "--time", "timeout", default=10, show_default=True, type=int,
              help="Seconds between SIGTERM and SIGKILL.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def restart(ctx, timeout, containers):
    """Stop (if running) and start containers again."""
    from .restart import restart as restart_
    _each(ctx, containers,
          lambda ref: restart_(ctx.obj["paths"], ref, ctx.obj["firewall"], timeout).name)


@click.command()
@click.option("--detach-keys", default="ctrl-p,ctrl-q", show_default=True,
              help="The keys that detach and leave the container running.")
@click.argument("container")
@click.pass_context
def attach(ctx, detach_keys, container):
    """Attach the terminal to a container run with -dit (its output, and with -i its
    input); the detach keys leave it running."""
    from .attach import attach as attach_, parse_keys
    ctx.exit(attach_(ctx.obj["paths"], container, parse_keys(detach_keys)))


def add_to(main) -> None:
    for cmd in (wait, rename, pause, unpause, cp, start, restart, attach):
        main.add_command(cmd)
