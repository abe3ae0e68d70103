"""`minirun run` without click: see runopts.py for why. Entry point of the `minirun` command."""
from __future__ import annotations

import os
import sys

from .runopts import FIREWALLS, GLOBAL_ENV, GLOBAL_OPTIONS, RUN_OPTIONS


class _NotMine(Exception):
    """Not a command line the fast path fully understands: click takes it."""


def _table(options):
    by_flag = {}
    for flags, dest, kind, _default, _help in options:
        for f in flags:
            by_flag[f] = (dest, kind)
    return by_flag


def _defaults(options) -> dict:
    return {dest: (list(default) if kind == "multi" else default)
            for _flags, dest, kind, default, _help in options}


def _parse_options(argv: list[str], i: int, options) -> tuple[dict, int]:
    """Parse options from argv[i:] up to the first positional argument (like click with
    allow_interspersed_args=False). Raises _NotMine on anything unusual."""
    by_flag = _table(options)
    values = _defaults(options)

    def store(dest, kind, value):
        if kind == "multi":
            values[dest].append(value)
        else:
            values[dest] = value

    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return values, i + 1
        if not arg.startswith("-") or arg == "-":
            return values, i
        if arg in ("-h", "--help"):
            raise _NotMine
        if arg.startswith("--"):
            name, eq, inline = arg.partition("=")
            if name not in by_flag:
                raise _NotMine
            dest, kind = by_flag[name]
            if kind == "flag":
                if eq:
                    raise _NotMine
                values[dest] = True
            elif eq:
                store(dest, kind, inline)
            else:
                if i + 1 >= len(argv):
                    raise _NotMine
                i += 1
                store(dest, kind, argv[i])
            i += 1
            continue
        # short options: -it, -dp 80, -p80, -e A=1
        j = 1
        while j < len(arg):
            flag = "-" + arg[j]
            if flag not in by_flag:
                raise _NotMine
            dest, kind = by_flag[flag]
            if kind == "flag":
                values[dest] = True
                j += 1
                continue
            if j + 1 < len(arg):
                store(dest, kind, arg[j + 1:])
            else:
                if i + 1 >= len(argv):
                    raise _NotMine
                i += 1
                store(dest, kind, argv[i])
            break
        i += 1
    return values, i


def _given(argv: list[str]) -> set[str]:
    by_flag = _table(GLOBAL_OPTIONS)
    return {by_flag[a.split("=", 1)[0]][0] for a in argv if a.split("=", 1)[0] in by_flag}


def parse(argv: list[str]):
    """(global options, run options, rootfs, command) for a plain `run`, else None."""
    try:
        globs, i = _parse_options(argv, 0, GLOBAL_OPTIONS)
        if i >= len(argv) or argv[i] != "run":
            return None
        opts, j = _parse_options(argv, i + 1, RUN_OPTIONS)
    except _NotMine:
        return None
    rest = argv[j:]
    if not rest:
        return None  # missing ROOTFS (or IMAGE): click says so; COMMAND may come from an
        # image (commands.run_command says when there is none)
    # click's order: the command line, then the environment variable, then the default
    given = _given(argv[:i])
    for dest, var in GLOBAL_ENV.items():
        if dest not in given and os.environ.get(var):
            globs[dest] = os.environ[var]
    if globs["firewall"] not in FIREWALLS:
        return None
    return globs, opts, rest[0], rest[1:]


PLANNABLE = (("run",), ("network", "create"), ("network", "rm"))


def explain_only(argv: list[str]) -> tuple[list[str], bool]:
    """`--explain=only` among the global options: argv with a plain `--explain` instead,
    and True (a plan: print what would be done, do nothing). Raises UsageError for a
    command that cannot be planned."""
    by_flag = _table(GLOBAL_OPTIONS)
    i, at = 0, None
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "--":
        if argv[i] == "--explain=only":
            at = i
        kind = by_flag.get(argv[i], (None, "flag"))[1]
        i += 2 if kind != "flag" else 1
    if at is None:
        return argv, False
    sub = tuple(argv[i:i + 2])
    if not any(sub[:len(p)] == p for p in PLANNABLE):
        from .errors import UsageError
        raise UsageError("--explain=only plans `run`, `network create` and "
                         "`network rm` (other commands: --explain)")
    return argv[:at] + ["--explain"] + argv[at + 1:], True


def main() -> None:
    from .faults import phase
    phase("main")  # the interpreter is up, site and this module imported
    argv = sys.argv[1:]
    if "--explain=only" in argv:
        from . import oplog
        from .errors import MinirunError
        try:
            argv, oplog.dry_run = explain_only(argv)
        except MinirunError as e:
            print(f"minirun: {e}", file=sys.stderr)
            sys.exit(e.exit_code)
    parsed = parse(argv)
    if parsed is None:
        from .cli import main as click_main
        click_main(args=argv, prog_name="minirun")
        return
    globs, opts, rootfs, command = parsed
    from .errors import MinirunError
    try:
        from .commands import run_command, setup_globals
        paths = setup_globals(globs)
        code = run_command(paths, globs["firewall"], opts, rootfs, command)
    except MinirunError as e:
        if globs["debug"]:
            raise
        print(f"minirun: {e}", file=sys.stderr)
        code = e.exit_code
    except KeyboardInterrupt:
        code = 130
    except Exception as e:  # a bug: one line unless --debug
        if globs["debug"]:
            raise
        print(f"minirun: internal error: {e!r} (run with --debug for details)", file=sys.stderr)
        code = 125
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    phase("exit")
    # No interpreter finalization: tearing down ~150 modules and collecting them costs
    # ~9 ms here and does nothing a run needs (every file minirun wrote is closed by now,
    # the threads of the teardown are joined, the kernel frees the rest). Unless a
    # profiler or tracer runs us (scripts/bench --profile, coverage): it writes at exit.
    if sys.getprofile() is None and sys.gettrace() is None:
        os._exit(code)
    sys.exit(code)
