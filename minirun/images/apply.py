"""What an image's config gives `minirun run`: layers, command, env, workdir, user."""
from __future__ import annotations

from ..tuples import NamedTuple

from ..errors import UsageError
from .store import Store


class ImageRun(NamedTuple):
    ref: str
    id: str
    lowers: tuple[str, ...]          # layer directories, top first (overlayfs's order)
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    env: dict[str, str]
    workdir: str | None
    user: str | None
    labels: dict[str, str]
    exposed_ports: tuple[str, ...]


def for_run(paths, ref: str) -> ImageRun:
    """The image `ref` names, as `run` uses it; UsageError when there is none."""
    store = Store.of(paths)
    try:
        image = store.resolve(ref)
    except UsageError:
        image = None
    if image is None:
        raise UsageError(f"rootfs {ref!r} does not exist, and no image is named so "
                         "(minirun image import, minirun pull)")
    if not image.layers:
        raise UsageError(f"image {ref!r} has no layers")
    cfg = (image.config or {}).get("config") or {}
    env = {}
    for item in cfg.get("Env") or ():
        name, _, value = str(item).partition("=")
        if name:
            env[name] = value
    lowers = tuple(str(store.layer_dir(h)) for h in reversed(image.layers))
    if len(":".join(lowers)) > 3500:  # overlayfs's mount options fit in one page
        raise UsageError(f"image {ref!r} has {len(lowers)} layers: too many for one "
                         "overlayfs mount with this state root")
    return ImageRun(ref, image.id, lowers, tuple(cfg.get("Entrypoint") or ()),
                    tuple(cfg.get("Cmd") or ()), env, cfg.get("WorkingDir") or None,
                    cfg.get("User") or None, dict(cfg.get("Labels") or {}),
                    tuple(sorted(cfg.get("ExposedPorts") or {})))


def command(entrypoint_opt: str | None, args: tuple[str, ...], image: ImageRun | None
            ) -> tuple[str, ...]:
    """Docker's rules: ENTRYPOINT + (the arguments, else CMD); --entrypoint replaces
    ENTRYPOINT and drops CMD ("" resets ENTRYPOINT)."""
    if entrypoint_opt is not None:
        ep = (entrypoint_opt,) if entrypoint_opt else ()
        return ep + tuple(args)
    if image is None:
        return tuple(args)
    return image.entrypoint + (tuple(args) or image.cmd)
