"""`minirun pull REF`: skopeo (a well-kept, Debian-packaged registry client) copies the
image into an OCI layout in a temporary directory of the store, which is then
imported like any other (layers verified, stored once)."""
from __future__ import annotations

import shutil
import subprocess

from ..errors import MinirunError, UsageError
from .importer import import_image
from .store import Image, Store, check_ref, split_ref


def _host(name: str) -> str | None:
    first, sep, _rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def pull(paths, reference: str, quiet: bool = False, out=print) -> tuple[Image, str]:
    ref = check_ref(reference)
    name, tag = split_ref(ref)
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        raise MinirunError("pull needs skopeo (apt-get install skopeo)")
    store = Store.of(paths)
    tmp = store.temp_dir("pull")
    try:
        argv = [skopeo, "copy"]
        host = _host(name)
        if host and host.rsplit(":", 1)[0] in ("127.0.0.1", "localhost", "[::1]"):
            argv.append("--src-tls-verify=false")  # a local registry speaks plain http
        argv += [f"docker://{ref}", f"oci:{tmp}/layout:{tag}"]
        if quiet:
            argv.insert(2, "--quiet")
        elif out:
            out(f"{tag}: Pulling from {name}")
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
        if res.returncode != 0:
            lines = [l for l in res.stderr.strip().splitlines() if l.strip()]
            why = lines[-1] if lines else f"skopeo exited with {res.returncode}"
            raise MinirunError(f"pull {ref}: {why}")
        image, _tags = import_image(paths, f"{tmp}/layout", ref,
                                    out=None if quiet else out, done="Pull complete")
    except UsageError as e:  # a bad image: not the user's command line
        raise MinirunError(f"pull {ref}: {e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return image, ref
