"""The command line: parse, build a spec, call the runtime. The one place errors become exit codes.

Exit codes (Docker's): the command's own code; 125 when minirun itself fails
(bad input, a kernel refusal); 126 command not executable; 127 command not
found; 128+N when the command was killed by signal N; 2 for click usage errors.
"""
from __future__ import annotations

import click

from . import __version__
from .errors import MinirunError, UsageError
from .runopts import FIREWALLS, GLOBAL_ENV, GLOBAL_OPTIONS, RUN_OPTIONS

CONTEXT = {"help_option_names": ["-h", "--help"]}


class UnknownFlag(click.ClickException):
    """An unknown flag: exit 125 and one line, as Docker's `unknown flag: --x`."""
    exit_code = 125

    def __init__(self, e: click.exceptions.NoSuchOption):
        path = e.ctx.command_path if e.ctx else "minirun"
        super().__init__(f"unknown flag: {e.option_name} (see '{path} --help')")

    def show(self, file=None) -> None:
        click.echo(f"minirun: {self.message}", err=True)


class MinirunGroup(click.Group):
    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except click.exceptions.NoSuchOption as e:  # among the global options
            raise UnknownFlag(e) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.exceptions.NoSuchOption as e:  # a command's (any depth)
            raise UnknownFlag(e) from None
        except MinirunError as e:
            if ctx.meta.get("minirun.debug"):
                raise
            click.echo(f"minirun: {e}", err=True)
            ctx.exit(e.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            ctx.exit(130)
        except Exception as e:  # a bug: one line unless --debug
            if ctx.meta.get("minirun.debug"):
                raise
            click.echo(f"minirun: internal error: {e!r} (run with --debug for details)",
                       err=True)
            ctx.exit(125)


def _options(table):
    """click options from a runopts table (the fast path parses the same table)."""
    def decorate(f):
        for flags, dest, kind, default, help_ in reversed(table):
            kw = {"help": help_}
            if kind == "flag":
                kw["is_flag"] = True
            elif kind == "multi":
                kw["multiple"] = True
            elif default is not None:
                kw.update(default=default, show_default=True)
            if dest in GLOBAL_ENV:
                kw["envvar"] = GLOBAL_ENV[dest]
            if dest == "firewall":
                kw["type"] = click.Choice(list(FIREWALLS))
            f = click.option(*flags, dest, **kw)(f)
        return f
    return decorate


@click.group(cls=MinirunGroup, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="minirun")
@_options(GLOBAL_OPTIONS)
@click.pass_context
def main(ctx, **globs):
    """minirun: a small container runtime to learn how containers and their networks work."""
    from .commands import heal_firewall, setup_globals
    ctx.meta["minirun.debug"] = globs["debug"]
    ctx.obj = {"paths": setup_globals(globs), "firewall": globs["firewall"]}
    if ctx.invoked_subcommand not in (None, "_cleanup"):
        heal_firewall(ctx.obj["paths"])


@main.command(context_settings={**CONTEXT, "allow_interspersed_args": False})
@_options(RUN_OPTIONS)
@click.argument("rootfs")
@click.argument("command", nargs=-1)  # may come from the image: run_command checks
@click.pass_context
def run(ctx, rootfs, command, **opts):
    """Run COMMAND in a new container made from the directory ROOTFS, or from an image
    (minirun images) when no such directory exists; COMMAND then defaults to the image's."""
    from .commands import run_command
    ctx.exit(run_command(ctx.obj["paths"], ctx.obj["firewall"], opts, rootfs, command))


@main.command("_cleanup", hidden=True)
@click.argument("container_id")
@click.argument("status", type=int)
@click.pass_context
def cleanup(ctx, container_id, status):
    """Called by the monitor when a detached container exits."""
    from .lifecycle import finish, report
    from .state import load
    c = load(ctx.obj["paths"], container_id)
    if c is not None:
        from .lifecycle import explain_teardown
        explain_teardown(c, status)
        report(finish(c, None if status < 0 else status))
        if c.config.restart_policy != "no":  # this process waits, then starts it again
            from .restart import after_exit
            after_exit(ctx.obj["paths"], container_id, ctx.obj["firewall"])


def _table(header, rows) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in (header, *rows):
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())


@main.command()
@click.argument("container")
@click.pass_context
def top(ctx, container):
    """Processes of a container: host PID and container PID side by side; then its
    namespaces beside the host's, marking those it shares."""
    from .procs import container_processes
    from .state import is_running, lookup
    c = lookup(ctx.obj["paths"], container)
    if not is_running(c):
        raise MinirunError(f"container {c.name} is not running")
    rows = [(r["host_pid"], r["container_pid"], r["user"], r["state"], r["command"])
            for r in container_processes(c.pid)]
    _table(("HOST PID", "CONTAINER PID", "USER", "STAT", "COMMAND"), rows)
    # the namespaces of PID 1 beside the host's (PID 1 of the host), from /proc/PID/ns
    # (minirun's own where PID 1's cannot be read)
    from .procs import host_reference, namespace_ids
    ref = host_reference()
    click.echo()
    _table(("NAMESPACE", "CONTAINER (PID 1)", "HOST (PID 1)" if ref == 1 else f"HOST (minirun, PID {ref})",
            "SHARED"),
           [(n["namespace"], n["container"] or "?", n["host"] or "?",
             "yes" if n["shared"] else "no") for n in namespace_ids(c.pid, ref)])


@main.command("exec", context_settings={**CONTEXT, "allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Run in the background (stdio /dev/null).")
@click.option("-i", "--interactive", is_flag=True)
@click.option("-t", "--tty", is_flag=True)
@click.option("-e", "--env", "env", multiple=True)
@click.option("-w", "--workdir")
@click.option("-u", "--user")
@click.argument("container")
@click.argument("command", nargs=-1, required=True)
@click.pass_context
def exec_(ctx, detach, interactive, tty, env, workdir, user, container, command):
    """Run COMMAND inside a running container."""
    if detach and (tty or interactive):
        raise UsageError("exec -d takes no -i or -t: its stdio is /dev/null")
    from .execute import exec_in
    from .spec import parse_env, parse_user
    from .state import lookup
    # like `run -w`: an absolute path (a missing directory is exec_in's error, exit 125)
    if workdir is not None and not workdir.startswith("/"):
        raise UsageError(f"invalid workdir {workdir!r}: must be an absolute path")
    env_, user_ = parse_env(env), parse_user(user)
    c = lookup(ctx.obj["paths"], container)
    ctx.exit(exec_in(c, list(command), tty=tty, interactive=interactive,
                     env=env_, workdir=workdir, user=user_, detach=detach))


@main.command()
@click.option("-t", "--time", "timeout", default=None, type=int,
              help="Seconds between the stop signal and SIGKILL [the container's "
                   "--stop-timeout, else 10].")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def stop(ctx, timeout, containers):
    """Stop containers: their --stop-signal [SIGTERM], then SIGKILL after a grace period."""
    from .lifecycle import stop as stop_
    for ref in containers:
        click.echo(stop_(ctx.obj["paths"], ref, timeout).name)


def _parse_signal(sig: str) -> int:
    from .runextras import parse_signal  # shared with --stop-signal
    return parse_signal(sig)


@main.command()
@click.option("-s", "--signal", "sig", default="KILL", show_default=True)
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def kill(ctx, sig, containers):
    """Send a signal to containers' PID 1."""
    from .lifecycle import kill as kill_
    num = _parse_signal(sig)
    for ref in containers:
        click.echo(kill_(ctx.obj["paths"], ref, num).name)


@main.command()
@click.option("-f", "--force", is_flag=True, help="Kill running containers first.")
@click.option("--all", "all_", is_flag=True, help="Every container.")
@click.argument("containers", nargs=-1)
@click.pass_context
def rm(ctx, force, all_, containers):
    """Remove containers."""
    from .lifecycle import remove_many
    from .state import all_containers
    paths = ctx.obj["paths"]
    refs = list(containers) + ([c.id for c in all_containers(paths)] if all_ else [])
    if not refs and not all_:
        raise UsageError("rm needs at least one container (or --all)")
    failed = None
    for result in remove_many(paths, refs, force):
        if isinstance(result, MinirunError):
            click.echo(f"minirun: {result}", err=True)
            failed = result
        else:
            click.echo(result.name)
    if failed:
        ctx.exit(failed.exit_code)


@main.command()
@click.argument("container")
@click.pass_context
def port(ctx, container):
    """Published ports of a container."""
    from .state import lookup
    c = lookup(ctx.obj["paths"], container)
    for p in (c.network.ports if c.network else ()):
        click.echo(f"{p.container_port}/{p.proto} -> {p.host_ip or '0.0.0.0'}:{p.host_port}")


from .cli_network import network  # noqa: E402

main.add_command(network)
__import__("minirun.cli_images", fromlist=["add_to"]).add_to(main)  # image, images, rmi, pull
__import__("minirun.cli_view", fromlist=["add_to"]).add_to(main)  # ps, inspect, logs, stats
__import__("minirun.cli_lifecycle", fromlist=["add_to"]).add_to(main)  # wait, rename, cp, ...
__import__("minirun.cli_volume", fromlist=["add_to"]).add_to(main)  # volume
__import__("minirun.cli_system", fromlist=["add_to"]).add_to(main)  # system, completion (last)
