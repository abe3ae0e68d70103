"""Images: a content-addressed store of unpacked layers, stacked as overlayfs lower
directories, and the image records that name them.

    <root>/images/
        lock                     flock: imports and removals are serialised
        repositories.json        {"NAME:TAG": IMAGE ID}
        images/<hex>.json        one image: its config, its layers (bottom to top)
        layers/<hex>/            one layer, unpacked once (hex of the blob's sha256,
                                 as in the manifest, verified while it was read);
                                 OCI whiteouts are overlayfs whiteouts in it
        tmp/                     half-made layers and pulls: `.NAME.PID.tmp`, swept
                                 once their process is gone

A container of an image records the layer directories it stacks (Config.lowers);
a layer is removed only when no image and no container record names it.
Nothing here is imported by `minirun run ./rootfs` (the start path stays fast).
"""
