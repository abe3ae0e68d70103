"""The container init's namespace and mount sequence (oci/child.py) against the
recording fake kernel, for a container as `minirun run` describes it: its mount plan
(rootfs.plan) written as config.json (oci/export.py), parsed as any bundle
(oci/config.py), set up by the OCI init. No root, no fork, no exec: the exact order --
/ private, the overlay, the mounts, pivot_root, the umount of the old root,
--read-only, sethostname -- is checked call by call.
"""
from pathlib import Path
from types import SimpleNamespace

import pytest

from fakes import FakeKernel
from minirun import rootfs
from minirun import kernel as k
from minirun.errors import MinirunError
from minirun.oci import child
from minirun.oci.config import parse
from minirun.oci.export import config_of
from minirun.record import Config
from minirun.rootfs import plan
from minirun.spec import Volume

RO = k.MOUNT_ATTR_RDONLY | k.MOUNT_ATTR_NOSUID | k.MOUNT_ATTR_NODEV


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A merged root with the usual directories, a volume source, the /etc files, and
    chdir recorded instead of done (pivot_into changes directory)."""
    merged = tmp_path / "merged"
    for d in ("proc", "dev", "sys", "etc", "tmp"):
        (merged / d).mkdir(parents=True)
    etc = {}
    for n in ("hostname", "hosts", "resolv.conf"):
        (merged / "etc" / n).write_text("")
        (tmp_path / n).write_text(f"minirun {n}\n")
        etc[f"/etc/{n}"] = str(tmp_path / n)
    src = tmp_path / "vol"
    src.mkdir()
    fake = FakeKernel()
    monkeypatch.setattr(rootfs.os, "chdir", lambda p: fake.calls.append(("chdir", p)))
    return tmp_path, merged, etc, src, fake


def container(tmp_path, **cfg):
    """What config_of reads of a container record."""
    config = Config(rootfs=str(tmp_path / "image"), command=("true",), hostname="web1",
                    env={"PATH": "/bin"}, **cfg)
    return SimpleNamespace(config=config, name="web", id="c0ffee", dir=Path(tmp_path),
                           paths=SimpleNamespace(owner_tag="t"))


def spec_of(tmp_path, steps, new_netns=False, netns_path=None, init_path=None, **cfg):
    c = container(tmp_path, **cfg)
    doc = config_of(c, steps, lower=c.config.rootfs, new_netns=new_netns,
                    netns_path=netns_path, cgroupns=False, init_path=init_path)
    return doc, parse(doc, str(tmp_path))


def setup(spec, fake) -> None:
    plan_ = child.Plan(spec, -1, -1, None, {}, None, False, {})
    child.setup_rootfs(spec, fake, {}, plan_)


def without(steps, *kinds):
    return [s for s in steps if s.kind not in kinds]  # mknod needs root; masks: the host's


def test_child_sequence_exact_order(world):
    tmp_path, merged, etc, src, fake = world
    steps = without(plan(volumes=[Volume(str(src), "/data", True)], etc_files=etc),
                    "devices", "mask", "readonly")
    # after pivot_root the fake's mount table is the container's: / and below it
    fake.mount_table = [(1, 1, "/", "rw"), (2, 1, "/proc", "rw"), (3, 1, "/dev", "rw"),
                        (4, 3, "/dev/shm", "rw"), (5, 1, "/sys", "ro")]
    _doc, spec = spec_of(tmp_path, steps, read_only=True)
    setup(spec, fake)

    m = str(merged)
    nsn = k.MS_NOSUID | k.MS_NODEV | k.MS_NOEXEC
    overlay = (f"lowerdir={tmp_path}/image,upperdir={tmp_path}/upper,"
               f"workdir={tmp_path}/work")
    ro_root = k.MOUNT_ATTR_RDONLY | k.MOUNT_ATTR_NODEV
    assert [c for c in fake.calls if c[0] != "openat2"] == [
        ("mount", None, "/", None, k.MS_REC | k.MS_PRIVATE, None, None),
        ("mount", "overlay", m, "overlay", k.MS_NODEV, overlay, m),
        ("mount", "proc", f"{m}/proc", "proc", nsn, None, "/proc"),
        ("mount", "tmpfs", f"{m}/dev", "tmpfs", k.MS_NOSUID, "mode=755,size=65536k", "/dev"),
        ("mount", "devpts", f"{m}/dev/pts", "devpts", k.MS_NOSUID | k.MS_NOEXEC,
         "newinstance,ptmxmode=0666,mode=0620,gid=5", "/dev/pts"),
        ("mount", "shm", f"{m}/dev/shm", "tmpfs", nsn, "mode=1777,size=65536k", "/dev/shm"),
        ("mount", "mqueue", f"{m}/dev/mqueue", "mqueue", nsn, None, "/dev/mqueue"),
        ("mount", "sysfs", f"{m}/sys", "sysfs", nsn | k.MS_RDONLY, None, "/sys"),
        # --read-only: the /etc files minirun binds in are read-only binds
        *[x for n in ("hostname", "hosts", "resolv.conf") for x in (
            ("mount", etc[f"/etc/{n}"], f"{m}/etc/{n}", None, k.MS_BIND, None, f"/etc/{n}"),
            ("mount_setattr", f"{m}/etc/{n}", k.AT_EMPTY_PATH | k.AT_RECURSIVE, RO, 0))],
        ("mount", str(src), f"{m}/data", None, k.MS_BIND | k.MS_REC, None, "/data"),
        ("mount_setattr", f"{m}/data", k.AT_EMPTY_PATH | k.AT_RECURSIVE, RO, 0),
        ("chdir", m),
        ("pivot_root", ".", "."),
        ("umount", ".", k.MNT_DETACH),
        ("chdir", "/"),
        # --read-only: the root mount, keeping its nodev
        ("mount_setattr", "/", k.AT_EMPTY_PATH, ro_root, 0),
        ("sethostname", "web1"),
    ]
    # every path of the mount plan was resolved inside the new root
    assert all(c[3] == k.RESOLVE_IN_ROOT | k.RESOLVE_NO_MAGICLINKS
               for c in fake.calls if c[0] == "openat2" and not c[1].startswith("/"))


def test_child_sequence_stops_at_the_first_failure(world):
    tmp_path, merged, etc, src, fake = world
    fake.fail = {"pivot_root": 22}
    _doc, spec = spec_of(tmp_path, without(plan(etc_files=etc), "devices"), read_only=True)
    with pytest.raises(MinirunError, match="pivot_root"):
        setup(spec, fake)
    # no umount of the host's root, no read-only remount, no hostname
    assert fake.ops()[-2:] == ["chdir", "pivot_root"]


# -- what `minirun run` writes into config.json (oci/export.py) ---------------------

def test_bundle_of_a_plain_run(world):
    tmp_path, merged, etc, src, fake = world
    doc, spec = spec_of(tmp_path, plan(etc_files=etc), new_netns=True, caps=("CHOWN",))
    assert doc["process"]["capabilities"] == {
        "bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"]}
    assert doc["process"]["noNewPrivileges"] is True
    assert doc["process"]["user"] == {"uid": 0, "gid": 0, "additionalGids": [0]}
    # ping for every group: written by PID 1 into its own network namespace
    assert doc["linux"]["sysctl"] == {"net.ipv4.ping_group_range": "0 2147483647"}
    assert {"type": "network"} in doc["linux"]["namespaces"]
    assert "/proc/kcore" in spec.masked and "/proc/sys" in spec.readonly_paths
    assert spec.annotations[child.OVERLAY] == (
        f"lowerdir={tmp_path}/image,upperdir={tmp_path}/upper,workdir={tmp_path}/work")
    assert child.DEVICES not in spec.annotations
    # the /etc binds stay writable without --read-only
    assert all(m.flags & k.MS_RDONLY == 0 for m in spec.mounts
               if m.destination.startswith("/etc/"))


def test_bundle_of_a_user_a_joined_network_and_init(world):
    tmp_path, merged, etc, src, fake = world
    doc, spec = spec_of(tmp_path, plan(etc_files=etc, privileged=True), netns_path="/proc/7/ns/net",
                        init_path="/dev/init", user=(1000, 100), groups=(27,),
                        caps=("CHOWN",), init=True)
    # a user other than root keeps its capabilities in the bounding set only (Docker)
    assert doc["process"]["capabilities"] == {
        "bounding": ["CAP_CHOWN"], "effective": [], "permitted": []}
    assert doc["process"]["user"] == {"uid": 1000, "gid": 100, "additionalGids": [100, 27]}
    assert doc["process"]["args"] == ["/dev/init", "--", "true"]
    assert ("network", "/proc/7/ns/net") in spec.namespaces
    assert "net.ipv4.ping_group_range" in spec.sysctl
    assert spec.annotations[child.DEVICES] == "host"   # --privileged: the host's devices


def test_bundle_without_a_network_namespace_writes_no_sysctl(world):
    tmp_path, merged, etc, src, fake = world
    doc, _spec = spec_of(tmp_path, plan(etc_files=etc))
    assert "sysctl" not in doc["linux"]
    assert all(n["type"] != "network" for n in doc["linux"]["namespaces"])
