"""`minirun image import`: a `docker save` tarball, an OCI image layout (a directory
or its tar, as `skopeo copy ... oci:` / `oci-archive:` write), or a plain rootfs
tarball (`docker export`, one layer, an empty config)."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tarfile
import time
from pathlib import Path

from .. import faults
from ..errors import UsageError
from .store import Image, Store, check_ref
from .unpack import LayerError, unpack

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def _hex(digest: str) -> str:
    alg, _, h = digest.partition(":")
    if alg != "sha256" or len(h) != 64 or not all(c in "0123456789abcdef" for c in h):
        raise UsageError(f"unsupported digest {digest!r} (sha256 only)")
    return h


class _Dir:
    def __init__(self, path: Path):
        self.path = path

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def open(self, name: str):
        p = (self.path / name)
        if ".." in Path(name).parts or not p.is_file():
            raise UsageError(f"{name!r} is missing from {str(self.path)!r}")
        return open(p, "rb")

    def close(self):
        pass


class _Tar:
    def __init__(self, path: Path, tar: tarfile.TarFile):
        self.path, self.tar = path, tar
        self.members = {m.name.removeprefix("./"): m
                        for m in tar.getmembers() if m.isreg()}

    def has(self, name: str) -> bool:
        return name in self.members

    def open(self, name: str):
        if name not in self.members:
            raise UsageError(f"{name!r} is missing from {str(self.path)!r}")
        return self.tar.extractfile(self.members[name])

    def close(self):
        self.tar.close()


def _read(src, name: str, digest: str | None = None) -> bytes:
    with src.open(name) as f:
        data = f.read()
    if digest is not None and hashlib.sha256(data).hexdigest() != _hex(digest):
        raise UsageError(f"{name!r} does not match its digest {digest}")
    return data


def import_image(paths, source: str, ref: str | None = None, out=None,
                 done: str = "Loaded") -> tuple[Image, list]:
    """Import `source` (file or directory); tag it `ref` (else the names the archive
    carries, else untagged). Returns (image, tags)."""
    tags = [check_ref(ref)] if ref else []
    p = Path(source)
    if not p.exists():
        raise UsageError(f"{source!r} does not exist")
    store = Store.of(paths)
    if p.is_dir():
        src = _Dir(p)
    else:
        try:
            src = _Tar(p, tarfile.open(p, "r:*"))
        except tarfile.TarError as e:
            raise UsageError(f"{source!r} is not a tar archive ({e})") from None
    try:
        with store.lock():
            store.ensure()
            # with the lock held, anything half-made by a process that died is garbage:
            # temp dirs of dead importers, layers stored before their image record was
            from .store import sweep
            sweep(paths)
            store.collect(paths)
            try:
                if src.has("manifest.json"):
                    image, names = _docker_save(store, src, out, done)
                elif src.has("oci-layout") and src.has("index.json"):
                    image, names = _oci(store, src, ref, out, done)
                elif isinstance(src, _Tar):
                    src.close()
                    image, names = _rootfs_tar(store, p, out, done)
                else:
                    raise UsageError(f"{source!r} is neither an OCI image layout nor a "
                                     "`docker save` directory")
            except Exception:
                store.collect(paths)  # the layers stored before the bad one
                raise
            tags = tags or names
            store.save(image, tags)
    finally:
        src.close()
    return image, tags


def _layers(store: Store, blobs: list[tuple[str | None, callable]], out, done: str
            ) -> tuple[list, list]:
    """Store each layer once. blobs: (expected hex or None, opener). Returns (hexes,
    sizes)."""
    known = {}
    for i in store.all_images():
        known.update(zip(i.layers, i.sizes))
    hexes, sizes = [], []
    for want, opener in blobs:
        if want is not None and store.layer_dir(want).is_dir():
            if out:
                out(f"{want[:12]}: Already exists")
            hexes.append(want)
            sizes.append(known.get(want) or _du(store.layer_dir(want)))
            continue
        tmp = store.temp_dir(f"layer-{(want or 'new')[:12]}")
        try:
            os.chmod(tmp, 0o755)  # unless the tar has its own "./" entry
            with opener() as f:
                got, size = unpack(f, tmp, want)
            faults.point("image.layer")  # unpacked, not yet in place: a crash test point
            if store.layer_dir(got).is_dir():
                shutil.rmtree(tmp)
            else:
                os.rename(tmp, store.layer_dir(got))
        except LayerError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise UsageError(str(e)) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if out:
            out(f"{got[:12]}: {done}")
        hexes.append(got)
        sizes.append(size)
    return hexes, sizes


def _du(d: Path) -> int:
    total = 0
    for top, _dirs, files in os.walk(d):
        for f in files:
            try:
                total += os.lstat(os.path.join(top, f)).st_size
            except OSError:
                pass
    return total


def _docker_save(store: Store, src, out, done) -> tuple[Image, list]:
    try:
        manifest = json.loads(_read(src, "manifest.json"))
        entry = manifest[0]
        cfg_name, layer_names = entry["Config"], list(entry["Layers"])
    except (ValueError, KeyError, IndexError, TypeError):
        raise UsageError("manifest.json is not a `docker save` manifest") from None
    if len(manifest) > 1:
        raise UsageError("the archive holds several images: import one at a time")
    raw = _read(src, cfg_name)
    config = json.loads(raw)
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    blobs = []
    for n, name in enumerate(layer_names):
        want = _hex(diff_ids[n]) if n < len(diff_ids) else None
        blobs.append((want, lambda name=name: src.open(name)))
    hexes, sizes = _layers(store, blobs, out, done)
    image = Image(hashlib.sha256(raw).hexdigest(), config, tuple(hexes), tuple(sizes),
                  time.time())
    names = [check_ref(t) for t in entry.get("RepoTags") or ()]
    return image, names


def _oci(store: Store, src, ref: str | None, out, done) -> tuple[Image, list]:
    index = json.loads(_read(src, "index.json"))
    manifests = index.get("manifests") or []
    want_tag = ref.rpartition(":")[2] if ref and ":" in ref else None
    desc = _pick(src, manifests, want_tag)
    mraw = _read(src, f"blobs/sha256/{_hex(desc['digest'])}", desc["digest"])
    manifest = json.loads(mraw)
    cdesc = manifest["config"]
    raw = _read(src, f"blobs/sha256/{_hex(cdesc['digest'])}", cdesc["digest"])
    blobs = [(_hex(l["digest"]), lambda d=l["digest"]: src.open(f"blobs/sha256/{_hex(d)}"))
             for l in manifest.get("layers") or ()]
    hexes, sizes = _layers(store, blobs, out, done)
    image = Image(_hex(cdesc["digest"]), json.loads(raw), tuple(hexes), tuple(sizes),
                  time.time(), manifest=desc["digest"])
    name = (desc.get("annotations") or {}).get("org.opencontainers.image.ref.name")
    names = []
    if name and ("/" in name or ":" in name):  # skopeo's oci:DIR:TAG names the tag only
        try:
            names = [check_ref(name)]
        except UsageError:
            pass
    return image, names


def _pick(src, manifests: list, tag: str | None) -> dict:
    """The manifest to import: the one tagged `tag`, the only one, or this machine's
    from an index (multi-architecture)."""
    if not manifests:
        raise UsageError("index.json lists no image")
    ann = "org.opencontainers.image.ref.name"
    chosen = [m for m in manifests if tag and (m.get("annotations") or {}).get(ann) == tag]
    if not chosen:
        chosen = [m for m in manifests
                  if (m.get("platform") or {}).get("architecture") in (None, ARCH)]
    if not chosen:
        raise UsageError(f"no image for {ARCH} in the index")
    desc = chosen[0]
    if desc.get("mediaType") in INDEX_TYPES:
        sub = json.loads(_read(src, f"blobs/sha256/{_hex(desc['digest'])}", desc["digest"]))
        return _pick(src, sub.get("manifests") or [], None)
    return desc


def _rootfs_tar(store: Store, path: Path, out, done) -> tuple[Image, list]:
    hexes, sizes = _layers(store, [(None, lambda: open(path, "rb"))], out, done)
    config = {"architecture": ARCH, "os": "linux",
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "config": {}, "rootfs": {"type": "layers",
                                       "diff_ids": [f"sha256:{h}" for h in hexes]}}
    raw = json.dumps(config, sort_keys=True).encode()
    return Image(hashlib.sha256(raw).hexdigest(), config, tuple(hexes), tuple(sizes),
                 time.time()), []
