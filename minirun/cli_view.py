"""`minirun ps`, `inspect`, `logs` and `stats` as Docker prints them; the views
themselves are in docker_view.py and logfile.py."""
from __future__ import annotations

import contextlib
import json
import sys
import time

import click

from .errors import MinirunError, NotFound

FORMAT_HELP = ("Go template (Docker's subset), 'table TEMPLATE' for aligned columns with "
               "a header, or 'json'.")


@contextlib.contextmanager
def template_errors():
    """A bad --format template: one line, exit 125 (minirun's code for bad input;
    Docker gives 64 for inspect and 1 elsewhere)."""
    from .gotemplate import TemplateError
    try:
        yield
    except TemplateError as e:
        raise MinirunError(f"template parsing error: {e}") from None


def echo_lines(lines) -> None:
    """One write: click.echo per line was ~20 ms of `ps` at 1000 containers."""
    lines = list(lines)
    if lines:
        click.echo("\n".join(lines))


@click.command()
@click.option("-a", "--all", "show_all", is_flag=True, help="Show stopped containers too.")
@click.option("-q", "--quiet", is_flag=True, help="Only IDs.")
@click.option("-n", "--last", type=int, default=None, help="The N last created (any state).")
@click.option("-l", "--latest", is_flag=True, help="The last created (any state).")
@click.option("-f", "--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="id, name, label, status, ancestor, network, exited; values of one key "
                   "are ORed, keys ANDed.")
@click.option("--no-trunc", is_flag=True, help="Full IDs and commands.")
@click.option("--format", "fmt", help=FORMAT_HELP + " Beyond Docker's fields: .Pid (host "
              "PID) and .IPAddress.")
@click.pass_context
def ps(ctx, show_all, quiet, last, latest, filters, no_trunc, fmt):
    """List containers (running ones; all with -a), newest first."""
    from . import docker_view as v
    from .lifecycle import reclaim
    paths = ctx.obj["paths"]
    wanted = v.parse_filters(filters)
    with template_errors():
        if fmt:
            v.parse_format(fmt)  # a bad template fails before anything is read
        listing: list = []
        reclaim(paths, listing)
        now = time.time()
        chosen = v.select(listing, wanted, show_all, 1 if latest else last)
        if fmt in (None, "table") and not quiet:
            echo_lines(v.ps_table(chosen, now, trunc=not no_trunc))
            return
        rows = [v.ps_row(c, w, now, trunc=not no_trunc) for c, w in chosen]
        echo_lines(v.render_rows(fmt, rows, v.PS_DEFAULT, v.PS_HEADERS, "ID", quiet))


@click.command()
@click.option("-f", "--format", "fmt", help="Go template applied to each object "
              "(Docker's subset: {{.State.Pid}}, {{json .Config}}, range, index, if...).")
@click.option("-s", "--size", is_flag=True, hidden=True)  # accepted, as Docker's
@click.option("--config", "oci", is_flag=True,
              help="The containers' OCI config.json (what the runtime layer ran) instead.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect(ctx, fmt, size, oci, names):
    """Containers as Docker's inspect shows them (a JSON array); minirun's own facts
    (host PID, veth, namespace, journal) under "Minirun"."""
    from . import docker_view as v
    from .state import lookup
    show = _oci_config if oci else v.container_inspect
    with template_errors():
        tmpl = None
        if fmt:
            _, tmpl = v.parse_format(fmt.strip())
        found, missing = [], []
        for n in names:
            try:
                found.append(show(lookup(ctx.obj["paths"], n)))
            except NotFound:
                missing.append(f"no such container: {n}")
            except MinirunError as e:  # an ambiguous prefix
                missing.append(str(e))
    print_inspected(ctx, found, missing, tmpl)


def _oci_config(c) -> dict:
    """CONTAINER_DIR/config.json: written at each start (oci/export.py)."""
    try:
        with open(c.dir / "config.json") as f:
            return json.load(f)
    except FileNotFoundError:
        raise MinirunError(f"container {c.name} has no config.json (never started)") from None


def print_inspected(ctx, found: list, missing: list[str], tmpl) -> None:
    """What inspect found, as a JSON array or through the template; then what it did
    not (as Docker: the others are printed, then exit 1)."""
    with template_errors():
        if tmpl is None:
            click.echo(json.dumps(found, indent=4, ensure_ascii=False))
        else:
            for obj in found:
                click.echo(tmpl.render(obj))
    for m in missing:
        click.echo(f"minirun: {m}", err=True)
    if missing:
        ctx.exit(1)


@click.command()
@click.option("--no-stream", is_flag=True, help="Print one table and exit.")
@click.option("--format", "fmt", help=FORMAT_HELP + " json: one object a line.")
@click.argument("containers", nargs=-1)
@click.pass_context
def stats(ctx, no_stream, fmt, containers):
    """CPU, memory, network, block I/O and processes of running containers, refreshed
    every second (from their cgroups' own counters)."""
    from .cgroups.stats import stats as stats_
    from .docker_view import parse_format
    with template_errors():
        if fmt and fmt not in ("table", "json"):
            parse_format(fmt)
        stats_(ctx.obj["paths"], tuple(containers), not no_stream, fmt, click.echo)


@click.command()
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output.")
@click.option("-n", "--tail", default="all", show_default=True,
              help="Lines from the end to show (a number, or all).")
@click.option("-t", "--timestamps", is_flag=True, help="Each line's time (RFC 3339).")
@click.option("--since", help="From this time: RFC 3339 (2024-01-02T15:04:05Z), a "
              "Unix time, or relative (10m, 1h30m).")
@click.option("--until", help="Up to this time (same forms as --since).")
@click.option("--explain", is_flag=True,
              help="The host-side changes of its life instead (run -d with --explain, and "
                   "the teardown when its command exited), as shell commands.")
@click.argument("container")
@click.pass_context
def logs(ctx, follow, tail, timestamps, since, until, explain, container):
    """Output of a container: its standard output here on standard output, its standard
    error on standard error."""
    from . import logfile
    from .state import lookup
    c = lookup(ctx.obj["paths"], container)
    if explain:
        return _cat(c.explain_path)
    opts = logfile.ReadOptions.parse(tail, timestamps, since, until)
    out = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}

    logfile.read(logfile.paths_of(c), opts, out, follow=follow,
                 alive=lambda: logfile.still_written(c))


def _cat(path) -> None:
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        sys.stdout.buffer.write(f.read())
        sys.stdout.buffer.flush()


def add_to(main) -> None:
    for cmd in (ps, inspect, stats, logs):
        main.add_command(cmd)
