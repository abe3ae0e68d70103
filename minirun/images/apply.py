"""What an image's config gives `minirun run`: layers, command, env, workdir, user."""
from __future__ import annotations

from typing import NamedTuple

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


def resolve_user(image: ImageRun, user: str) -> tuple[int, int]:
    """The image's USER: UID[:GID] numbers, or names found in its /etc/passwd and
    /etc/group (the topmost layer that has the file)."""
    import os
    import re
    from ..spec import parse_user
    name, _, group = user.partition(":")
    if re.fullmatch(r"\d+(:\d+)?", user):
        return parse_user(user)

    def lookup(fname: str, key: str, field: int) -> int | None:
        if key.isdigit():
            return int(key)
        for layer in image.lowers:
            p = os.path.join(layer, "etc", fname)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            with open(p, errors="replace") as f:
                for line in f:
                    parts = line.rstrip("\n").split(":")
                    if len(parts) > field and parts[0] == key and parts[field].isdigit():
                        return int(parts[field])
            return None
        return 0 if key == "root" else None

    uid = lookup("passwd", name, 2)
    if uid is None:
        raise UsageError(f"image user {name!r} is not in the image's /etc/passwd")
    if group:
        gid = lookup("group", group, 2)
        if gid is None:
            raise UsageError(f"image group {group!r} is not in the image's /etc/group")
    else:
        gid = lookup("passwd", name, 3)
        gid = uid if gid is None else gid
    return uid, gid
