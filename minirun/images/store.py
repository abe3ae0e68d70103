"""The image store under the state root: records, references, locking, removal."""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from collections.abc import Iterator
from ..tuples import NamedTuple

from .. import fsutil
from ..errors import Conflict, NotFound, UsageError

HEX_RE = re.compile(r"^[0-9a-f]{64}$")
REF_RE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*$")  # lower case, as Docker's references


class Image(NamedTuple):
    id: str                    # hex of the config's sha256 (Docker's image ID)
    config: dict               # the image config (OCI / Docker), as imported
    layers: tuple[str, ...]    # layer hex digests, bottom to top
    sizes: tuple[int, ...]     # bytes unpacked, per layer
    created: float             # when it was imported here
    manifest: str | None = None  # the manifest's digest, where there was one

    @property
    def size(self) -> int:
        return sum(self.sizes)

    def to_json(self) -> dict:
        d = self._asdict()
        d["layers"], d["sizes"] = list(self.layers), list(self.sizes)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Image":
        return cls(d["id"], d["config"], tuple(d["layers"]), tuple(d["sizes"]),
                   d["created"], d.get("manifest"))


def split_ref(ref: str) -> tuple[str, str]:
    """"busybox" -> ("busybox", "latest"); "127.0.0.1:5000/bb:1" -> (..., "1")."""
    name, tag = ref, "latest"
    head, sep, tail = ref.rpartition(":")
    if sep and "/" not in tail:
        name, tag = head, tail
    return name, tag


def check_ref(ref: str) -> str:
    """NAME[:TAG] in Docker's spelling (lower case; no digest references)."""
    name, tag = split_ref(ref)
    if (not name or not REF_RE.match(name) or "@" in ref or len(ref) > 255
            or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag)):
        raise UsageError(f"invalid reference format {ref!r}: expected NAME[:TAG] "
                         "(lower case)")
    return f"{name}:{tag}"


class Store:
    def __init__(self, root: Path):
        self.dir = Path(root) / "images"
        self.layers = self.dir / "layers"
        self.records = self.dir / "images"
        self.tmp = self.dir / "tmp"
        self.repos_path = self.dir / "repositories.json"

    @classmethod
    def of(cls, paths) -> "Store":
        return cls(paths.root)

    def lock(self, shared: bool = False):
        return fsutil.locked(self.dir / "lock", shared=shared)

    def ensure(self) -> None:
        for d in (self.layers, self.records, self.tmp):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)

    def layer_dir(self, hexdigest: str) -> Path:
        return self.layers / hexdigest

    def temp_dir(self, what: str) -> Path:
        """A fresh `.WHAT.PID.tmp` directory: renamed into place when complete, swept
        (sweep()) if its process died first."""
        self.ensure()
        d = self.tmp / f".{what}.{os.getpid()}.tmp"
        if d.exists():
            import shutil
            shutil.rmtree(d)
        d.mkdir(mode=0o700)
        return d

    # -- records -----------------------------------------------------------
    def repositories(self) -> dict[str, str]:
        return fsutil.read_json(self.repos_path, {}) or {}

    def all_images(self) -> Iterator[Image]:
        try:
            names = sorted(os.listdir(self.records))
        except FileNotFoundError:
            return
        for n in names:
            if n.endswith(".json") and not n.startswith("."):
                d = fsutil.read_json(self.records / n)
                if d:
                    yield Image.from_json(d)

    def get(self, image_id: str) -> Image | None:
        d = fsutil.read_json(self.records / f"{image_id}.json")
        return Image.from_json(d) if d else None

    def save(self, image: Image, tags: list[str]) -> None:
        """The image record, then its tags (a tag moves from an older image, as in
        Docker). Call with the lock held."""
        self.ensure()
        fsutil.write_json(self.records / f"{image.id}.json", image.to_json())
        repos = self.repositories()
        for t in tags:
            repos[t] = image.id
        fsutil.write_json(self.repos_path, repos)

    def tags_of(self, image_id: str) -> list[str]:
        return sorted(t for t, i in self.repositories().items() if i == image_id)

    def resolve(self, ref: str) -> Image | None:
        """NAME[:TAG], an image ID or an unambiguous prefix of one (sha256: optional)."""
        repos = self.repositories()
        try:
            full = check_ref(ref)
        except UsageError:
            full = None
        if full and full in repos:
            return self.get(repos[full])
        h = ref[7:] if ref.startswith("sha256:") else ref
        if re.fullmatch(r"[0-9a-f]{4,64}", h):
            found = [i for i in self.all_images() if i.id.startswith(h)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise UsageError(f"image ID prefix {ref!r} is ambiguous")
        return None

    def lookup(self, ref: str) -> Image:
        image = self.resolve(ref)
        if image is None:
            raise NotFound(f"no such image: {ref}")
        return image

    # -- removal -----------------------------------------------------------
    def users(self, paths, image_id: str) -> list:
        from ..state import all_containers
        return [c for c in all_containers(paths) if c.config.image_id == image_id]

    def remove(self, paths, ref: str, force: bool = False) -> list[str]:
        """`rmi`: untag REF; the image goes with its last tag (or when REF is its ID).
        Refused while a container (any state) uses it, unless force. Returns the lines
        Docker prints (Untagged: / Deleted:)."""
        out = []
        with self.lock():
            image = self.lookup(ref)
            tags = self.tags_of(image.id)
            try:
                by_tag = check_ref(ref) in tags
            except UsageError:
                by_tag = False
            if by_tag and len(tags) > 1:  # just one of its names
                repos = self.repositories()
                del repos[check_ref(ref)]
                fsutil.write_json(self.repos_path, repos)
                return [f"Untagged: {check_ref(ref)}"]
            if not by_tag and len(tags) > 1 and not force:
                raise Conflict(f"unable to delete {image.id[:12]} (must be forced) - image "
                               "is referenced in multiple repositories")
            users = self.users(paths, image.id)
            if users and not force:
                raise Conflict(f"unable to remove image {ref!r} (must force) - container "
                               f"{users[0].short_id()} is using it")
            repos = {t: i for t, i in self.repositories().items() if i != image.id}
            fsutil.write_json(self.repos_path, repos)
            out += [f"Untagged: {t}" for t in tags]
            try:
                os.unlink(self.records / f"{image.id}.json")
            except FileNotFoundError:
                pass
            out.append(f"Deleted: sha256:{image.id}")
            for h in self.collect(paths):
                out.append(f"Deleted: layer sha256:{h}")
        return out

    def collect(self, paths) -> list[str]:
        """Remove the layers no image and no container names. Call with the lock held."""
        import shutil
        from ..state import all_containers
        used = {h for i in self.all_images() for h in i.layers}
        for c in all_containers(paths):
            used.update(Path(d).name for d in c.config.lowers)
        removed = []
        try:
            names = os.listdir(self.layers)
        except FileNotFoundError:
            return removed
        for h in names:
            if HEX_RE.match(h) and h not in used:
                # renamed first: a crash mid-removal leaves a temp dir, never half a layer
                gone = self.temp_dir(f"rm-{h[:12]}")
                os.rmdir(gone)
                os.rename(self.layers / h, gone)
                shutil.rmtree(gone)
                removed.append(h)
        return removed


def sweep(paths) -> list[str]:
    """Half-unpacked layers and pulls whose process is gone (a crash or a SIGKILL)."""
    import shutil
    from ..procs import pid_alive
    store = Store.of(paths)
    removed = []
    for d in (store.tmp, store.dir, store.records):  # and atomic writes' temp files
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            continue
        for n in names:
            m = fsutil.TEMP_RE.match(n)
            if m and not pid_alive(int(m.group(1))):
                if (d / n).is_dir():
                    shutil.rmtree(d / n, ignore_errors=True)
                else:
                    (d / n).unlink(missing_ok=True)
                removed.append(str((d / n).relative_to(paths.root)))
    return removed


def human_size(n: float) -> str:
    """Docker's (SI) sizes: 4.26MB."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n}"


def since(t: float, now: float | None = None) -> str:
    s = max(0, int((now or time.time()) - t))
    for secs, word in ((86400 * 365, "year"), (86400 * 30, "month"), (86400 * 7, "week"),
                       (86400, "day"), (3600, "hour"), (60, "minute")):
        if s >= secs:
            n = s // secs
            if n == 1:
                return f"About a{'n' if word == 'hour' else ''} {word} ago" \
                    if word in ("hour", "minute") else f"1 {word} ago"
            return f"{n} {word}s ago"
    return "Less than a second ago" if s < 1 else f"{s} seconds ago"
