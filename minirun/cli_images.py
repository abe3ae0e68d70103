"""`minirun image import|ls|inspect|rm`, and Docker's top-level `images`, `rmi`, `pull`."""
from __future__ import annotations

import json
import time

import click

from .errors import MinirunError


@click.group()
def image():
    """Manage images."""


@image.command("import")
@click.argument("source")
@click.argument("reference", required=False)
@click.option("-q", "--quiet", is_flag=True, help="Print only the image ID.")
@click.pass_context
def import_(ctx, source, reference, quiet):
    """Import a `docker save` tarball, an OCI image layout (directory or tar) or a rootfs
    tarball (`docker export`) as NAME[:TAG]."""
    from .images.importer import import_image
    img, tags = import_image(ctx.obj["paths"], source, reference,
                             out=None if quiet else lambda s: click.echo(s))
    if not quiet:
        for t in tags:
            click.echo(f"Loaded image: {t}")
    click.echo(f"sha256:{img.id}" if quiet or not tags else f"Loaded image ID: sha256:{img.id}")


LS_DEFAULT = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
LS_TITLES = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID",
             "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
             "Digest": "DIGEST", "Containers": "CONTAINERS"}


def _ls(ctx, quiet, no_trunc, fmt=None):
    from .cli_view import echo_lines, template_errors
    from .docker_view import Row, local_time, parse_format, render_rows
    from .images.store import Store, human_size, since, split_ref
    with template_errors():
        if fmt:
            parse_format(fmt)
        store = Store.of(ctx.obj["paths"])
        rows = []
        by_id: dict[str, list[str]] = {}
        for t, i in store.repositories().items():
            by_id.setdefault(i, []).append(t)
        for img in sorted(store.all_images(), key=lambda i: -i.created):
            iid = f"sha256:{img.id}" if no_trunc else img.id[:12]
            if quiet and not fmt:
                rows.append(iid)
                continue
            for t in sorted(by_id.get(img.id) or [None]):
                repo, tag = split_ref(t) if t else ("<none>", "<none>")
                rows.append(Row(Repository=repo, Tag=tag, ID=iid,
                                CreatedSince=since(img.created),
                                CreatedAt=local_time(img.created), Size=human_size(img.size),
                                Digest=img.manifest or "<none>", Containers="N/A"))
        if quiet:  # one line an image, even with several tags
            echo_lines(dict.fromkeys(r if isinstance(r, str) else r["ID"] for r in rows))
            return
        echo_lines(render_rows(fmt, rows, LS_DEFAULT, LS_TITLES))


@click.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only image IDs.")
@click.option("--no-trunc", is_flag=True, help="Full image IDs.")
@click.option("--format", "fmt", help="Go template (Docker's subset), 'table TEMPLATE' or "
              "'json'.")
@click.pass_context
def ls(ctx, quiet, no_trunc, fmt):
    """List images."""
    _ls(ctx, quiet, no_trunc, fmt)


def _rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


@image.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect(ctx, names):
    """Show images as Docker's `image inspect` does (a JSON array)."""
    from .images.store import Store
    store = Store.of(ctx.obj["paths"])
    out, missing = [], []
    for n in names:
        img = store.resolve(n)
        if img is None:
            missing.append(n)
            continue
        cfg = img.config or {}
        out.append({
            "Id": f"sha256:{img.id}", "RepoTags": store.tags_of(img.id),
            "RepoDigests": [], "Created": cfg.get("created") or _rfc3339(img.created),
            "Architecture": cfg.get("architecture"), "Os": cfg.get("os"),
            "Author": cfg.get("author", ""),
            "Config": cfg.get("config") or {}, "Size": img.size,
            "RootFS": {"Type": "layers",
                       "Layers": (cfg.get("rootfs") or {}).get("diff_ids") or []},
            "Minirun": {"Imported": _rfc3339(img.created), "Manifest": img.manifest,
                        "LayerDigests": [f"sha256:{h}" for h in img.layers],
                        "LayerDirs": [str(store.layer_dir(h)) for h in reversed(img.layers)]},
        })
    click.echo(json.dumps(out, indent=4))
    if missing:
        for n in missing:
            click.echo(f"minirun: no such image: {n}", err=True)
        ctx.exit(1)


def _rmi(ctx, names, force):
    from .images.store import Store
    store = Store.of(ctx.obj["paths"])
    code = 0
    for n in names:
        try:
            for line in store.remove(ctx.obj["paths"], n, force):
                click.echo(line)
        except MinirunError as e:
            click.echo(f"minirun: {e}", err=True)
            code = 1
    ctx.exit(code)


@click.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True,
              help="Remove even if containers use it (their layers stay until they are "
              "removed).")
@click.pass_context
def rm(ctx, names, force):
    """Remove images (refused while a container uses one, unless -f)."""
    _rmi(ctx, names, force)


@click.command("pull")
@click.argument("reference")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image's name.")
@click.pass_context
def pull(ctx, reference, quiet):
    """Pull an image from a registry (skopeo does the transfer)."""
    from .images.pull import pull as pull_
    img, ref = pull_(ctx.obj["paths"], reference, quiet=quiet,
                     out=lambda s: click.echo(s))
    if quiet:
        click.echo(ref)
    else:
        click.echo(f"Digest: {img.manifest}")
        click.echo(f"Status: Downloaded newer image for {ref}")
        click.echo(ref)


# One command under two names each, as Docker has them: `image ls` is `images`,
# `image rm` is `rmi`.
image.add_command(ls, "ls")
image.add_command(rm, "rm")


def add_to(main) -> None:
    main.add_command(image)
    main.add_command(ls, "images")
    main.add_command(rm, "rmi")
    main.add_command(pull)
