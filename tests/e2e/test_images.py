"""Images: import (docker save, OCI layout, rootfs tar), run with the image's config,
whiteouts, shared layers, rmi, and pull from a local registry (docker-registry)."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

CONFIG = {"Entrypoint": ["/bin/sh", "-c"],
          "Cmd": ['echo "cmd:$GREETING:$(pwd):$(id -u):$(id -g)"'],
          "Env": ["GREETING=hello", "PATH=/bin:/usr/bin:/sbin:/usr/sbin"],
          "WorkingDir": "/work", "User": "1000:1001",
          "ExposedPorts": {"80/tcp": {}}, "Labels": {"org.example.test": "yes"}}


def _add(tar: tarfile.TarFile, name: str, data: bytes | None = None, *, kind=None,
         mode=0o644, uid=0, gid=0):
    info = tarfile.TarInfo(name)
    info.mode, info.uid, info.gid, info.mtime = mode, uid, gid, 1700000000
    if kind is not None:
        info.type = kind
    elif data is not None:
        info.size = len(data)
    tar.addfile(info, io.BytesIO(data) if data is not None else None)


def layer1(rootfs: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(rootfs, arcname=".")
        _add(tar, "data", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tar, "data/keep", b"kept\n")
        _add(tar, "data/gone", b"deleted by layer 2\n")
        _add(tar, "opq", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tar, "opq/a", b"a\n")
        _add(tar, "opq/b", b"b\n")
    return buf.getvalue()


def layer2() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "data", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tar, "data/.wh.gone", b"")
        _add(tar, "opq", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tar, "opq/.wh..wh..opq", b"")
        _add(tar, "opq/c", b"c\n")
        _add(tar, "work", kind=tarfile.DIRTYPE, mode=0o755, uid=1000, gid=1001)
    return buf.getvalue()


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def image_config(layers: list[bytes]) -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "config": CONFIG,
                       "rootfs": {"type": "layers",
                                  "diff_ids": [f"sha256:{_sha(l)}" for l in layers]}}
                      ).encode()


def docker_save(path: Path, layers: list[bytes], tag: str) -> None:
    cfg = image_config(layers)
    with tarfile.open(path, "w") as tar:
        names = []
        for l in layers:
            name = f"{_sha(l)}/layer.tar"
            _add(tar, name, l)
            names.append(name)
        _add(tar, f"{_sha(cfg)}.json", cfg)
        _add(tar, "manifest.json", json.dumps(
            [{"Config": f"{_sha(cfg)}.json", "RepoTags": [tag], "Layers": names}]).encode())


def oci_layout(d: Path, layers: list[bytes], tag: str = "1") -> str:
    """An OCI image layout with gzip layers (as skopeo writes); returns the manifest
    digest."""
    import gzip
    blobs = d / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> str:
        h = _sha(data)
        (blobs / h).write_bytes(data)
        return f"sha256:{h}"

    cfg = image_config(layers)
    descs = []
    for l in layers:
        gz = gzip.compress(l, mtime=0)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      "digest": blob(gz), "size": len(gz)})
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": blob(cfg), "size": len(cfg)},
        "layers": descs}).encode()
    mdigest = blob(manifest)
    (d / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (d / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdigest,
         "size": len(manifest),
         "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
    return mdigest


@pytest.fixture(scope="module")
def layers(rootfs):
    return [layer1(rootfs), layer2()]


@pytest.fixture
def work(tmp_path):
    return tmp_path


def _ok(host, *args, timeout=60):
    return host.minirun(*args, check=True, timeout=timeout).stdout


def _record(host, cid: str) -> dict:
    for d in (host.root / "containers").iterdir():
        if d.name.startswith(cid[:12]):
            return json.loads((d / "state.json").read_text())
    raise AssertionError(f"no record for {cid}")


def test_docker_save_run_config_whiteouts(host, layers, work):
    archive = work / "img.tar"
    docker_save(archive, layers, "example/bb:2")
    out = _ok(host, "image", "import", str(archive))
    assert "Loaded image: example/bb:2" in out
    ls = _ok(host, "images")
    assert ls.splitlines()[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED",
                                          "SIZE"]
    assert "example/bb" in ls and " 2 " in ls
    # no command: ENTRYPOINT + CMD, with Env, WorkingDir, User
    assert _ok(host, "run", "--rm", "example/bb:2").strip() == "cmd:hello:/work:1000:1001"
    # a command replaces CMD; -e overrides the image's Env; -u and -w the image's
    assert _ok(host, "run", "--rm", "-e", "GREETING=bye", "-u", "0", "-w", "/data",
               "example/bb:2", 'echo "$GREETING $(pwd) $(id -u)"').strip() == "bye /data 0"
    # --entrypoint replaces ENTRYPOINT and drops CMD
    assert _ok(host, "run", "--rm", "--entrypoint", "/bin/cat", "example/bb:2",
               "/data/keep").strip() == "kept"
    # the whiteouts of layer 2: data/gone deleted, opq/ opaque
    out = _ok(host, "run", "--rm", "example/bb:2", "ls /data; echo --; ls /opq")
    assert out.split() == ["keep", "--", "c"]
    # image inspect: Docker's shape
    info = json.loads(_ok(host, "image", "inspect", "example/bb:2"))
    assert info[0]["Config"]["Labels"] == {"org.example.test": "yes"}
    assert len(info[0]["RootFS"]["Layers"]) == 2
    # a path still works exactly as before
    assert _ok(host, "run", "--rm", str(host_rootfs(host)), "echo", "path").strip() == "path"
    assert _ok(host, "rmi", "example/bb:2").count("Deleted") == 3
    assert not list((host.root / "images" / "layers").iterdir())


def host_rootfs(host):
    from harness import ROOTFS
    return ROOTFS


def test_layers_shared_and_rmi_refused(host, layers, work):
    archive = work / "img.tar"
    docker_save(archive, layers, "shared:1")
    _ok(host, "image", "import", str(archive))
    ids = [_ok(host, "run", "-d", "shared:1", "sleep 300").strip() for _ in range(2)]
    try:
        recs = [_record(host, i) for i in ids]
        lowers = [r["config"]["lowers"] for r in recs]
        assert lowers[0] == lowers[1] and len(lowers[0]) == 2
        layer_dirs = {str(p) for p in (host.root / "images" / "layers").iterdir()}
        assert set(lowers[0]) == layer_dirs
        for r in recs:  # the overlay of each container stacks the same directories
            mi = Path(f"/proc/{r['pid']}/mountinfo").read_text()
            assert f"lowerdir={':'.join(lowers[0])}" in mi
        assert recs[0]["config"]["labels"] == {"org.example.test": "yes"}
        assert recs[0]["config"]["exposed_ports"] == ["80/tcp"]
        res = host.minirun("rmi", "shared:1")
        assert res.returncode == 1 and "is using it" in res.stderr
        assert _ok(host, "images", "-q").strip()
    finally:
        _ok(host, "rm", "-f", *ids)
    assert "Deleted: sha256:" in _ok(host, "rmi", "shared:1")
    assert _ok(host, "images", "-q").strip() == ""


def test_oci_layout_dir_and_tar_and_rootfs_tar(host, layers, work, rootfs):
    d = work / "oci"
    oci_layout(d, layers)
    out = _ok(host, "image", "import", str(d), "oci/bb:1")
    assert out.count(": Loaded") == 2
    assert _ok(host, "run", "--rm", "oci/bb:1").strip() == "cmd:hello:/work:1000:1001"
    # the same layers again, from a tar of the layout: stored once
    archive = work / "oci.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(d, arcname=".")
    out = _ok(host, "image", "import", str(archive), "oci/bb:again")
    assert out.count("Already exists") == 2
    assert len(list((host.root / "images" / "layers").iterdir())) == 2
    # a plain rootfs tarball (docker export): one layer, no config -> a command is needed
    plain = work / "rootfs.tar.gz"
    with tarfile.open(plain, "w:gz") as tar:
        tar.add(rootfs, arcname=".")
    _ok(host, "image", "import", str(plain), "plain")
    assert _ok(host, "run", "--rm", "plain", "echo", "plain").strip() == "plain"
    res = host.minirun("run", "--rm", "plain")
    assert res.returncode == 125 and "no command" in res.stderr
    res = host.minirun("run", "--rm", "nosuchimage", "true")
    assert res.returncode == 125 and "does not exist" in res.stderr
    for ref in ("oci/bb:1", "oci/bb:again", "plain"):
        _ok(host, "rmi", ref)
    assert not list((host.root / "images" / "layers").iterdir())




@pytest.mark.skipif(not shutil.which("docker-registry") or not shutil.which("skopeo"),
                    reason="needs docker-registry and skopeo (scripts/setup)")
def test_pull_from_local_registry(host, layers, work):
    port = 5000  # the throwaway host has a network namespace of its own
    storage = work / "registry"
    storage.mkdir()
    cfg = work / "registry.yml"
    cfg.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                   f"    rootdirectory: {storage}\nhttp:\n  addr: 127.0.0.1:{port}\n")
    reg = host.popen(["docker-registry", "serve", str(cfg)],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        probe = [sys.executable, "-c", "import socket; socket.create_connection("
                 f"('127.0.0.1', {port}), timeout=1).close()"]
        while host.run(probe).returncode != 0:
            assert reg.poll() is None, "the registry exited"
            assert time.monotonic() < deadline, "the registry did not listen"
            time.sleep(0.05)
        d = work / "oci"
        oci_layout(d, layers, "1")
        host.run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{d}:1",
                  f"docker://127.0.0.1:{port}/busybox:1"], check=True, timeout=120)
        res = host.minirun("pull", f"127.0.0.1:{port}/busybox:1", timeout=120)
        assert res.returncode == 0, res.stderr
        assert "Copying blob" in res.stdout and res.stdout.count("Pull complete") == 2
        assert _ok(host, "run", "--rm", f"127.0.0.1:{port}/busybox:1").strip() == \
            "cmd:hello:/work:1000:1001"
        _ok(host, "rmi", f"127.0.0.1:{port}/busybox:1")
        res = host.minirun("pull", f"127.0.0.1:{port}/nosuch:1", timeout=120)
        assert res.returncode != 0 and res.stderr.startswith("minirun: pull ")
        assert not list((host.root / "images" / "tmp").iterdir())
    finally:
        reg.terminate()
        reg.wait(timeout=10)


def test_sigkill_during_import_leaves_nothing_half_made(host, layers, work):
    """SIGKILL at every crash point of an import (faults.py): the next import sweeps the
    half-unpacked layer and the layers no record names; rmi then empties the store."""
    from harness import MINIRUN
    archive = work / "img.tar"
    docker_save(archive, layers, "crash:1")
    trace = work / "trace"
    res = host.run(["env", f"MINIRUN_TRACE_POINTS={trace}"] + MINIRUN
                   + ["image", "import", str(archive)])
    assert res.returncode == 0, res.stderr
    _ok(host, "rmi", "crash:1")
    seen = list(dict.fromkeys(trace.read_text().split()))
    assert "image.layer#1" in seen and any(p.startswith("write:") for p in seen)
    for point in seen:
        res = host.run(["env", f"MINIRUN_KILL_AT={point}"] + MINIRUN
                       + ["image", "import", str(archive)])
        assert res.returncode == -9, (point, res.stderr)
        _ok(host, "image", "import", str(archive))
        assert _ok(host, "run", "--rm", "crash:1", "ls /data").split() == ["keep"]
        _ok(host, "rmi", "crash:1")
        store = host.root / "images"
        assert not list((store / "layers").iterdir()), point
        assert not list((store / "tmp").iterdir()), point
        assert not [p for p in (store / "images").iterdir()], point


def test_bad_imports_are_refused_and_leave_nothing(host, layers, work):
    res = host.minirun("image", "import", str(work / "missing.tar"))
    assert res.returncode == 125 and "does not exist" in res.stderr
    assert not (host.root / "images").exists()
    evil = work / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        _add(tar, "ok", b"fine")
        _add(tar, "../../escaped", b"x")
    res = host.minirun("image", "import", str(evil), "evil")
    assert res.returncode == 125 and "leaves the layer" in res.stderr
    assert not (work / "escaped").exists() and not (host.root / "escaped").exists()
    # a layer that is not what its digest says (docker save: the config's diff_ids)
    bad = work / "bad.tar"
    docker_save(bad, layers, "bad:1")
    with tarfile.open(bad) as t:
        members = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}
    with tarfile.open(bad, "w") as tar:
        for name, data in members.items():
            if name.endswith("layer.tar") and len(data) < 100000:
                data = layer2().replace(b"c\n", b"X\n", 1)  # same size, other content
            _add(tar, name, data)
    res = host.minirun("image", "import", str(bad))
    assert res.returncode == 125 and "does not match its digest" in res.stderr
    res = host.minirun("run", "--rm", "-u", "0", "bad:1", "true")
    assert res.returncode == 125
    store = host.root / "images"
    assert not list((store / "tmp").iterdir()) and not list((store / "images").iterdir())
    assert not list((store / "layers").iterdir())  # not even the good first layer
    assert _ok(host, "images", "-q").strip() == ""
