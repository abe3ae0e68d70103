"""Shell completion (bash, zsh, fish) through click's own protocol: the script that
`minirun completion SHELL` prints calls `minirun` back with _MINIRUN_COMPLETE set, and
click answers with the commands and options. This module adds the names: containers,
images, networks and volumes, read from the state directories (the root given by
--root / MINIRUN_ROOT on the line being completed), without taking any lock or touching
the kernel.
"""
from __future__ import annotations

import click
from click.shell_completion import CompletionItem, get_completion_class

PROG, VAR = "minirun", "_MINIRUN_COMPLETE"


def script(shell: str) -> str:
    cls = get_completion_class(shell)
    return cls(None, {}, PROG, VAR).source()  # the source needs only the names


def _paths(ctx):
    from .state import Paths
    root = ctx.find_root().params
    return Paths.from_env(root.get("root"), root.get("runroot"))


def _safe(names):
    def complete(ctx, param, incomplete):
        try:
            found = sorted(set(names(_paths(ctx))))
        except Exception:  # a broken record must not break the user's shell
            return []
        return [CompletionItem(n) for n in found if n.startswith(incomplete)]
    return complete


def containers(paths):
    from .state import all_containers
    for c in all_containers(paths):
        yield c.name
        yield c.short_id()


def images(paths):
    from .images.store import Store
    store = Store.of(paths)
    for tag in store.repositories():
        yield tag
        if tag.endswith(":latest"):
            yield tag[:-len(":latest")]


def networks(paths):
    from .network.networks import NetworkStore
    yield "bridge"
    for n in NetworkStore(paths).all():
        yield n.name


def volumes(paths):
    from .volumes import VolumeStore
    for v in VolumeStore(paths).all():
        yield v["name"]


def _image_or_dir(ctx, param, incomplete):
    """run ROOTFS: an image, or a directory (the shell completes paths)."""
    if incomplete.startswith(("/", ".", "~")):
        return [CompletionItem(incomplete, type="dir")]
    return _safe(images)(ctx, param, incomplete)


# (command path, argument) -> completer
COMPLETERS = {
    ("run", "rootfs"): _image_or_dir,
    ("network", "inspect", "name"): _safe(networks),
    ("network", "diagram", "name"): _safe(networks),
    ("network", "rm", "names"): _safe(networks),
    ("image", "inspect", "names"): _safe(images),
    ("image", "rm", "names"): _safe(images),
    ("rmi", "names"): _safe(images),
    ("volume", "inspect", "names"): _safe(volumes),
    ("volume", "rm", "names"): _safe(volumes),
}
CONTAINER_ARGS = ("container", "containers")
OPTIONS = {"--network": _safe(networks), "--net": _safe(networks)}


def attach(main: click.Group) -> None:
    """Give every argument that names a container, image, network or volume its
    completer (commands registered later are covered: call this last)."""
    def walk(cmd, path):
        for p in cmd.params:
            key = path + (p.name,)
            if isinstance(p, click.Argument):
                if key in COMPLETERS:
                    p._custom_shell_complete = COMPLETERS[key]
                elif p.name in CONTAINER_ARGS:
                    p._custom_shell_complete = _safe(containers)
            elif any(o in OPTIONS for o in p.opts):
                p._custom_shell_complete = OPTIONS[p.opts[0]]
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, path + (name,))
    walk(main, ())
