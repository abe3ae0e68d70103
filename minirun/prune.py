"""`system prune`, `volume prune` and `system df`: what is unused, removed through the
same paths `rm`, `network rm`, `rmi` and `volume rm` take (so every refusal they make --
a container started meanwhile, a network in use -- still holds).

Sizes are disk use (allocated blocks), Docker's SI units (images/store.human_size).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import MinirunError, UsageError


def du(path: Path) -> int:
    """Bytes allocated below `path`, not following links or crossing mounts."""
    total = 0
    try:
        dev = os.lstat(path).st_dev
    except OSError:
        return 0
    for top, dirs, files in os.walk(path):
        for n in dirs + files:
            try:
                st = os.lstat(os.path.join(top, n))
            except OSError:
                continue
            total += st.st_blocks * 512
            if n in dirs and st.st_dev != dev:
                dirs.remove(n)
    return total


def confirm(force: bool, what: list[str], ask=input) -> bool:
    """Docker's warning and [y/N] prompt; without a terminal, refuse (nobody can
    answer) unless -f."""
    if force:
        return True
    if not sys.stdin.isatty():
        raise UsageError("this removes data and asks for confirmation first: give -f (or "
                         "--force) to run it without a terminal")
    print("WARNING! This will remove:")
    for w in what:
        print(f"  - {w}")
    print()
    try:
        answer = ask("Are you sure you want to continue? [y/N] ")
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def prune_containers(paths) -> tuple[list[str], int, list[str]]:
    """Every container that is not running (created, exited, dead): ids removed, bytes
    of their writable layers, errors."""
    from .lifecycle import remove
    from .state import all_containers, is_running, owner_alive
    ids, size, errors = [], 0, []
    for c in all_containers(paths):
        if is_running(c) or (c.state != "stopped" and owner_alive(c)):
            continue  # running, or a start in progress
        bytes_ = du(c.dir / "upper")
        try:
            remove(paths, c.id)
        except MinirunError as e:
            errors.append(f"container {c.name}: {e}")
            continue
        ids.append(c.id)
        size += bytes_
    return ids, size, errors


def prune_networks(paths) -> tuple[list[str], list[tuple[str, MinirunError]]]:
    """Remove every network no container is attached to (not the default one): the names
    removed, and (name, error) for those that could not be."""
    from .network.networks import NetworkStore
    store = NetworkStore(paths)
    names, failed = [], []
    for n in store.all():
        if n.name != "bridge" and not store.containers_of(n):
            try:
                store.remove(n.name)
                names.append(n.name)
            except MinirunError as e:
                failed.append((n.name, e))
    return names, failed


def prune_images(paths, all_: bool) -> tuple[list[str], int, list[str]]:
    """Dangling images (no tag), or with all_ every image no container uses; the lines
    `rmi` prints, bytes of the layers that went, errors."""
    from .images.store import Store
    store = Store.of(paths)
    if not store.dir.exists():
        return [], 0, []
    sizes = {}
    for i in store.all_images():
        sizes.update(zip(i.layers, i.sizes))
    used = {c.config.image_id for c in _containers(paths)}
    lines, size, errors = [], 0, []
    for image in list(store.all_images()):
        tags = store.tags_of(image.id)
        if image.id in used or (tags and not all_):
            continue
        try:  # one tag at a time: the last one removes the image (no force needed)
            for ref in tags or [image.id]:
                out = store.remove(paths, ref)
                lines += [line.replace("Untagged:", "untagged:").replace("Deleted:", "deleted:")
                          for line in out if not line.startswith("Deleted: layer")]
                size += sum(sizes.get(line.rsplit(":", 1)[1], 0) for line in out
                            if line.startswith("Deleted: layer"))
        except MinirunError as e:
            errors.append(f"image {image.id[:12]}: {e}")
    return lines, size, errors


def _containers(paths):
    from .state import all_containers
    return list(all_containers(paths))


def prune_volumes(paths) -> tuple[list[str], int]:
    from .volumes import VolumeStore
    store = VolumeStore(paths)
    used = store.in_use()
    names, size = [], 0
    for v in store.all():
        if v["name"] in used:
            continue
        bytes_ = store.size(v["name"])
        try:
            store.remove(v["name"])
        except MinirunError:
            continue  # a container started using it meanwhile
        names.append(v["name"])
        size += bytes_
    return names, size


def leftovers(paths) -> tuple[list[str], list[str]]:
    """What today's crash reclaim does: containers whose process and owner are gone,
    network objects and cgroups no record accounts for, half-written temp files."""
    from .images.store import sweep as sweep_images
    from .lifecycle import prune_orphans, reclaim
    from .volumes import VolumeStore
    names = reclaim(paths)
    errors = prune_orphans(paths)
    sweep_images(paths)
    VolumeStore(paths).sweep()
    return names, errors


def system_df(paths) -> list[tuple[str, int, int, int, int]]:
    """(TYPE, TOTAL, ACTIVE, SIZE, RECLAIMABLE) for images, containers, local volumes."""
    from .images.store import Store
    from .state import is_running
    from .volumes import VolumeStore
    containers = _containers(paths)
    store = Store.of(paths)
    images = list(store.all_images()) if store.dir.exists() else []
    used_ids = {c.config.image_id for c in containers}
    layer_size, active_layers = {}, set()
    for i in images:
        layer_size.update(zip(i.layers, i.sizes))
        if i.id in used_ids:
            active_layers.update(i.layers)
    isize = sum(layer_size.values())
    ireclaim = sum(s for h, s in layer_size.items() if h not in active_layers)
    csizes = [(is_running(c), du(c.dir / "upper")) for c in containers]
    vstore = VolumeStore(paths)
    vols = vstore.all()
    vused = vstore.in_use()
    vsizes = [(v["name"] in vused, vstore.size(v["name"])) for v in vols]
    return [
        ("Images", len(images), sum(1 for i in images if i.id in used_ids), isize, ireclaim),
        ("Containers", len(containers), sum(1 for r, _ in csizes if r),
         sum(s for _, s in csizes), sum(s for r, s in csizes if not r)),
        ("Local Volumes", len(vols), sum(1 for u, _ in vsizes if u),
         sum(s for _, s in vsizes), sum(s for u, s in vsizes if not u)),
    ]
