"""The cgroup v2 backend against a FAKE cgroupfs (a tmp directory holding the files the
kernel would show): every file written and its content. This machine is cgroup v1, so
this is the only place the v2 backend runs here."""
import os

import pytest

from minirun import cgroups
from minirun.cgroups import v2
from minirun.errors import MinirunError
from minirun.spec import Resources, parse_resources

CID = "ab" * 32
TAG = "1234abcd"


@pytest.fixture
def fake(tmp_path, monkeypatch):
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma\n")
    (root / "cgroup.subtree_control").write_text("")
    real = cgroups.make_dir

    def mkdir_like_the_kernel(path, tag):
        """A new cgroup shows the controllers its parent enabled, and enables none."""
        ino = real(path, tag)
        enabled = (root.joinpath(os.path.dirname(path)) / "cgroup.subtree_control").read_text()
        with open(os.path.join(path, "cgroup.controllers"), "w") as f:
            f.write(" ".join(c.lstrip("+") for c in enabled.split()))
        open(os.path.join(path, "cgroup.subtree_control"), "w").close()
        return ino

    monkeypatch.setattr(cgroups, "make_dir", mkdir_like_the_kernel)
    monkeypatch.setattr(v2, "make_dir", mkdir_like_the_kernel)
    # setxattr of trusted.* works on the tmp directory as root; the tag is checked below
    return root


KERNEL_FILES = {"cgroup.controllers", "cgroup.subtree_control"}


def written(d):
    return {p.name: p.read_text() for p in sorted(d.iterdir())
            if p.is_file() and p.name not in KERNEL_FILES}


def make(root, res):
    layout = cgroups.Layout(2, {str(root): cgroups.V2_CONTROLLERS})
    g = layout.group(TAG, CID)
    inodes = g.create(res, TAG)
    return g, inodes


def test_every_limit_written(fake):
    res = parse_resources(memory="64m", cpus="0.5", cpu_shares="512", pids_limit="100",
                          cpuset_cpus="0", ncpus=2, available={0, 1})
    g, inodes = make(fake, res)
    parent, d = fake / f"minirun-{TAG}", fake / f"minirun-{TAG}" / CID
    assert g.path == str(d) and inodes == {str(d): os.stat(d).st_ino}
    # the controllers are enabled in one write at the root and in minirun's directory
    assert (fake / "cgroup.subtree_control").read_text() == "+cpu +cpuset +io +memory +pids"
    assert (parent / "cgroup.subtree_control").read_text() == "+cpu +cpuset +io +memory +pids"
    assert (d / "cgroup.subtree_control").read_text() == ""  # the container's enables none
    assert written(d) == {
        "memory.max": str(64 << 20),
        "memory.swap.max": str(64 << 20),   # Docker's default total 2x memory: swap = 1x
        "cpu.max": "50000 100000",
        "cpu.weight": str(1 + (512 - 2) * 9999 // 262142),  # runc's conversion: 20
        "pids.max": "100",
        "cpuset.cpus": "0",
    }
    assert os.getxattr(d, cgroups.XATTR) == f"{TAG}:{CID}".encode()
    assert os.getxattr(parent, cgroups.XATTR) == TAG.encode()


def test_no_limits_writes_no_limit_file(fake):
    g, _ = make(fake, Resources())
    assert written(fake / f"minirun-{TAG}" / CID) == {}


def test_swap_unlimited_and_explicit(fake):
    g, _ = make(fake, parse_resources(memory="100m", memory_swap="-1"))
    assert (fake / f"minirun-{TAG}" / CID / "memory.swap.max").read_text() == "max"


def test_swap_total_minus_memory(fake):
    g, _ = make(fake, parse_resources(memory="100m", memory_swap="150m"))
    assert (fake / f"minirun-{TAG}" / CID / "memory.swap.max").read_text() == str(50 << 20)


def test_cpu_weight_given_directly(fake):
    g, _ = make(fake, parse_resources(cpu_weight="300"))
    assert written(fake / f"minirun-{TAG}" / CID) == {"cpu.weight": "300"}


def test_join_writes_cgroup_procs(fake):
    g, _ = make(fake, Resources())
    g.add(4242)
    assert (fake / f"minirun-{TAG}" / CID / "cgroup.procs").read_text() == "4242"


def test_controller_enabled_already_is_not_rewritten(fake):
    (fake / "cgroup.subtree_control").write_text("cpu memory pids cpuset io\n")
    make(fake, Resources())
    assert (fake / "cgroup.subtree_control").read_text() == "cpu memory pids cpuset io\n"
    parent = fake / f"minirun-{TAG}"
    assert (parent / "cgroup.subtree_control").read_text() == "+cpu +cpuset +io +memory +pids"


def test_missing_controller_refused(fake):
    """The root offers no memory controller: --memory is refused with a clear reason."""
    (fake / "cgroup.controllers").write_text("cpu io\n")
    with pytest.raises(MinirunError, match="'memory' is not available"):
        make(fake, parse_resources(memory="64m"))


def test_oom_counter_and_stats(fake):
    g, _ = make(fake, Resources())
    d = fake / f"minirun-{TAG}" / CID
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\n")
    assert g.oom_kills() == 1
    (d / "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    (d / "memory.current").write_text("10485760\n")
    (d / "memory.stat").write_text("anon 8000000\ninactive_file 1048576\n")
    (d / "memory.max").write_text("max\n")
    (d / "pids.current").write_text("3\n")
    (d / "io.stat").write_text("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2\n"
                               "8:16 rbytes=1 wbytes=2 rios=1 wios=1\n")
    assert g.stats() == {"cpu_ns": 1500000, "mem_usage": 10485760 - 1048576,
                         "mem_limit": None, "pids": 3, "blk_read": 4097, "blk_write": 8194}


def test_detect_v2_and_hybrid(tmp_path):
    mi = tmp_path / "mountinfo"
    mi.write_text("30 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n")
    layout = cgroups.detect(str(mi))
    assert layout.version == 2 and list(layout.hierarchies) == ["/sys/fs/cgroup"]
    # hybrid: tmpfs with v1 hierarchies plus an empty "unified" cgroup2: v1
    mi.write_text(
        "25 1 0:22 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n"
        "26 25 0:23 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
        "27 25 0:24 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        "28 25 0:25 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        "29 25 0:26 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n")
    layout = cgroups.detect(str(mi))
    assert layout.version == 1
    assert layout.hierarchies == {"/sys/fs/cgroup/cpu,cpuacct": ("cpu", "cpuacct"),
                                  "/sys/fs/cgroup/memory": ("memory",)}
    mi.write_text("25 1 0:22 / /proc rw - proc proc rw\n")
    assert cgroups.detect(str(mi)) is None


def test_undo_removes_only_a_proven_directory(fake, monkeypatch):
    """The v2 undo on the fake tree: a directory with another tag is left alone."""
    g, inodes = make(fake, Resources())
    d = fake / f"minirun-{TAG}" / CID
    os.setxattr(d, cgroups.XATTR, b"someone-else")
    failures = cgroups.remove_group(2, [(["memory"], str(d),
                                         cgroups._proof(str(d), f"{TAG}:{CID}", None))], TAG)
    assert d.exists() and failures and "left alone" in failures[0].reason
    os.setxattr(d, cgroups.XATTR, f"{TAG}:{CID}".encode())
    for f in [*d.iterdir(), *d.parent.glob("cgroup.*")]:  # a real cgroupfs needs no
        f.unlink()                                          # unlink; the fake does
    failures = cgroups.remove_group(2, [(["memory"], str(d),
                                         cgroups._proof(str(d), f"{TAG}:{CID}", None))], TAG)
    assert failures == [] and not d.exists() and not d.parent.exists()
