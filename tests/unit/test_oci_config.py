"""config.json -> Spec: what is taken, and the one-line errors for what is not."""
import copy
import json
import os

import pytest

from minirun import kernel as k
from minirun.errors import UsageError
from minirun.oci import config, state
from minirun.oci.cgroup import rel_path
from minirun.oci.cli import features
from minirun.oci.create import parse_signal


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def base() -> dict:
    return config.default_spec()


def parse(doc, bundle):
    return config.parse(copy.deepcopy(doc), str(bundle))


def error(doc, bundle) -> str:
    with pytest.raises(UsageError) as e:
        parse(doc, bundle)
    return str(e.value)


def test_default_spec_parses(bundle):
    s = parse(base(), bundle)
    assert s.root == str(bundle / "rootfs") and s.readonly
    assert s.process.args == ("sh",) and s.process.terminal
    assert s.process.caps["bounding"] == s.process.caps["effective"]
    assert "NET_BIND_SERVICE" in s.process.caps["permitted"]
    assert s.process.rlimits == (("RLIMIT_NOFILE", 1024, 1024),)
    assert s.new_namespaces() == {"pid", "network", "ipc", "uts", "mount"}
    assert s.ns_flags() & k.CLONE_NEWNET and not s.ns_flags() & k.CLONE_NEWPID
    assert s.propagation == k.MS_PRIVATE | k.MS_REC
    proc = next(m for m in s.mounts if m.destination == "/proc")
    assert proc.flags == k.MS_NOSUID | k.MS_NOEXEC | k.MS_NODEV and proc.data is None
    dev = next(m for m in s.mounts if m.destination == "/dev")
    assert dev.data == "mode=755,size=65536k" and dev.flags & k.MS_STRICTATIME


def test_mount_options_flags_propagation_and_data(bundle):
    doc = base()
    doc["mounts"] = [{"destination": "/data", "source": "/srv", "options":
                      ["rbind", "ro", "nosuid", "rslave"]},
                     {"destination": "/tmp/", "type": "tmpfs", "source": "tmpfs",
                      "options": ["exec", "noexec", "mode=1777"]}]
    b, t = parse(doc, bundle).mounts
    assert b.type == "bind" and b.flags == k.MS_BIND | k.MS_REC | k.MS_RDONLY | k.MS_NOSUID
    assert b.propagation == k.MS_SLAVE | k.MS_REC
    assert t.destination == "/tmp" and t.flags == k.MS_NOEXEC and t.data == "mode=1777"


def test_joined_namespace_and_resources(bundle):
    doc = base()
    doc["linux"]["namespaces"][1] = {"type": "network", "path": "/run/netns/x"}
    doc["linux"]["cgroupsPath"] = "/libpod_parent/libpod-x"
    doc["linux"]["resources"] = {
        "devices": [{"allow": False, "access": "rwm"},
                    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
                    {"allow": True, "type": "c", "access": "m"}],
        "memory": {"limit": 64 << 20, "swap": 128 << 20},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
        "pids": {"limit": 100}}
    s = parse(doc, bundle)
    assert ("network", "/run/netns/x") in s.namespaces
    assert not s.ns_flags() & k.CLONE_NEWNET
    assert s.device_rules == ("a", "c 1:3 rw", "c *:* m")
    assert s.device_allow == (False, True, True)
    r = s.resources
    assert (r.memory, r.memory_swap, r.cpu_shares, r.cpus, r.pids_limit, r.cpuset_cpus) == \
        (64 << 20, 128 << 20, 512, None, 100, "0")
    # quota and period are written as given, not as Docker's --cpus
    assert s.cgroup_extra == (("cpu.period", 100000), ("cpu.quota", 50000))


def test_resources_beyond_dockers_flags(bundle):
    doc = base()
    doc["linux"]["resources"] = {
        "memory": {"limit": 50 << 20, "reservation": 40 << 20, "swap": 50 << 20,
                   "kernel": 50 << 20, "kernelTCP": 50 << 20, "swappiness": 10,
                   "disableOOMKiller": True},
        "cpu": {"shares": 1024, "quota": 50000, "period": 500000, "cpus": "0",
                "mems": "0"}}
    s = parse(doc, bundle)
    assert s.resources.memory == 50 << 20 and s.resources.cpuset_cpus == "0"
    assert dict(s.cgroup_extra) == {
        "memory.disableOOMKiller": 1, "memory.reservation": 40 << 20,
        "memory.swappiness": 10, "memory.kernel": 50 << 20, "memory.kernelTCP": 50 << 20,
        "cpu.period": 500000, "cpu.quota": 50000, "cpu.mems": "0"}
    # disableOOMKiller false asks for nothing
    doc["linux"]["resources"] = {"memory": {"disableOOMKiller": False}}
    assert parse(doc, bundle).cgroup_extra == ()


def test_unknown_properties_are_ignored(bundle):
    """config.md, Extensibility: runtimes MUST ignore unknown properties (but a known
    one minirun cannot honour is still refused, above)."""
    doc = base()
    doc["unknown"] = {"x": 1}
    doc["process"]["bogus"] = True
    doc["hooks"] = {"onfire": []}
    doc["linux"]["resources"] = {"memory": {"future": 1}}
    s = parse(doc, bundle)
    assert s.process.args == ("sh",)


def test_bind_mount_ignores_file_system_options(bundle):
    doc = base()
    doc["mounts"].append({"destination": "/mnt", "source": "/etc",
                          "options": ["rbind", "nosuid", "strictatime", "mode=755",
                                      "size=1k", "rshared"]})
    m = parse(doc, bundle).mounts[-1]
    assert m.type == "bind" and m.data is None
    assert m.flags & k.MS_BIND and m.flags & k.MS_REC and m.flags & k.MS_NOSUID
    assert m.propagation == k.MS_SHARED | k.MS_REC


def test_capabilities_newer_than_the_kernel_are_left_out(bundle, monkeypatch):
    monkeypatch.setattr(config, "_cap_last_cap", lambda: 39)
    doc = base()
    doc["process"]["capabilities"]["bounding"] = ["CAP_CHOWN", "CAP_BPF",
                                                  "CAP_CHECKPOINT_RESTORE"]
    s = parse(doc, bundle)
    assert s.process.caps["bounding"] == ("CHOWN", "BPF")
    assert len(s.warnings) == 1 and "CAP_CHECKPOINT_RESTORE" in s.warnings[0]
    assert "CAP_CHOWN" not in s.warnings[0]


def test_rootfs_propagation(bundle):
    doc = base()
    s = parse(doc, bundle)
    assert not s.propagation_set and s.propagation == k.MS_PRIVATE | k.MS_REC
    doc["linux"]["rootfsPropagation"] = "shared"
    s = parse(doc, bundle)
    assert s.propagation_set and s.propagation == k.MS_SHARED


def test_hooks_and_seccomp(bundle):
    doc = base()
    doc["hooks"] = {"prestart": [{"path": "/bin/true"}],
                    "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", "x"],
                                  "env": ["A=1"], "timeout": 5}]}
    doc["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                               "architectures": ["SCMP_ARCH_X86_64"],
                               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                             "errnoRet": 1}]}
    s = parse(doc, bundle)
    assert s.hooks["prestart"][0].args == ("/bin/true",)
    assert s.hooks["poststop"][0] == config.Hook("/bin/sh", ("sh", "-c", "x"), ("A=1",), 5)
    assert s.hooks["createRuntime"] == ()
    assert json.loads(s.seccomp)["syscalls"][0]["names"] == ["mkdir"]


@pytest.mark.parametrize("change, words", [
    (lambda d: d.update(solaris={"milestone": "x"}), "solaris is not supported"),
    (lambda d: d["process"].update(apparmorProfile="p"), "process.apparmorProfile is not "
     "supported"),
    (lambda d: d["process"].update(selinuxLabel="l"), "process.selinuxLabel is not supported"),
    (lambda d: d["process"].update(args=[]), "process.args must name a command"),
    (lambda d: d["process"].update(cwd="rel"), "process.cwd must be an absolute path"),
    (lambda d: d["process"].update(env=["NOEQUALS"]), "is not NAME=VALUE"),
    (lambda d: d["process"]["user"].update(uid="0"), "process.user.uid must be an integer"),
    (lambda d: d["process"]["capabilities"].update(bounding=["CAP_FLY"]),
     "unknown capability 'CAP_FLY'"),
    (lambda d: d["process"].update(rlimits=[{"type": "RLIMIT_X", "soft": 1, "hard": 1}]),
     "'RLIMIT_X' is not a known rlimit"),
    (lambda d: d["process"].update(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 2,
                                             "hard": 1}]), "soft is above hard"),
    (lambda d: d["process"].update(oomScoreAdj=2000), "oomScoreAdj must be from -1000"),
    (lambda d: d["root"].update(path="nope"), "is not a directory"),
    (lambda d: d.update(ociVersion="2.0.0"), "not a 1.x version"),
    (lambda d: d["linux"]["namespaces"].append({"type": "user"}),
     "user namespaces are not supported"),
    (lambda d: d["linux"]["namespaces"].append({"type": "time"}), "'time' is not a "
     "namespace type"),
    (lambda d: d["linux"]["namespaces"].append({"type": "pid"}), "pid namespace given twice"),
    (lambda d: d["linux"].update(namespaces=[{"type": "pid"}]), "must include a mount "
     "namespace"),
    (lambda d: d["linux"].update(uidMappings=[{"containerID": 0, "hostID": 1000,
                                               "size": 1}]), "linux.uidMappings is not "
     "supported"),
    (lambda d: d["linux"].update(intelRdt={"closID": "x"}), "linux.intelRdt is not supported"),
    (lambda d: d["linux"].update(rootfsPropagation="sideways"), "'sideways' is not one of"),
    (lambda d: d["linux"].update(resources={"blockIO": {"weight": 10}}),
     "linux.resources.blockIO is not supported"),
    (lambda d: d["linux"].update(resources={"cpu": {"realtimeRuntime": 1}}),
     "linux.resources.cpu.realtimeRuntime is not supported"),
    (lambda d: d["linux"].update(resources={"memory": {"swappiness": 101}}),
     "linux.resources.memory.swappiness must be from 0 to 100"),
    (lambda d: d["linux"].update(resources={"cpu": {"mems": "0-x"}}),
     "linux.resources.cpu.mems '0-x' is not a list of memory nodes"),
    (lambda d: d["linux"].update(resources={"cpu": {"period": 10}}),
     "linux.resources.cpu.period must be from 1000"),
    (lambda d: d["linux"].update(netDevices={"eth0": {}}), "linux.netDevices is not "
     "supported"),
    (lambda d: d["process"]["capabilities"].update(bounding=["CAP_LAST_CAP"]),
     "unknown capability 'CAP_LAST_CAP'"),
    (lambda d: d["mounts"].append({"destination": "/x", "type": "bind", "source": "/x",
                                   "options": ["rbind", "bogus"]}),
     "mounts[6].options 'bogus' is not a flag of a bind mount"),
    (lambda d: d["linux"].update(seccomp={"defaultAction": "SCMP_ACT_NOTIFY"}),
     "SCMP_ACT_NOTIFY is not supported"),
    (lambda d: d["linux"].update(seccomp={"defaultAction": "SCMP_ACT_ALLOW",
                                          "listenerPath": "/x"}), "listenerPath"),
    (lambda d: d["mounts"].append({"destination": "/x", "type": "nfs", "source": "h:/"}),
     "mounts[6].type 'nfs' is not supported"),
    (lambda d: d["mounts"].append({"destination": "x", "type": "tmpfs"}),
     "mounts[6].destination must be an absolute path"),
    (lambda d: d["mounts"].append({"destination": "/x", "type": "bind", "source": "/x",
                                   "options": ["idmap"]}), "'idmap' is not supported"),
    (lambda d: d["mounts"].append({"destination": "/x", "options": ["bind"]}),
     "mounts[6].source is needed for a bind mount"),
    (lambda d: d.update(hooks={"prestart": [{"path": "rel"}]}),
     "hooks.prestart[0].path must be an absolute path"),
    (lambda d: d["linux"].update(devices=[{"path": "/etc/x", "type": "c"}]),
     "must be a path below /dev"),
    (lambda d: d["linux"].update(sysctl={"net.ipv4.ip_forward": 1}),
     "linux.sysctl values must be strings"),
    (lambda d: d.update(hostname="h") or d["linux"].update(namespaces=[{"type": "mount"}]),
     "hostname needs a new uts namespace"),
])
def test_errors_name_the_field(bundle, change, words):
    doc = base()
    change(doc)
    msg = error(doc, bundle)
    assert msg.startswith("config.json: ") and "\n" not in msg
    assert words in msg


def test_load_reports_bad_json_and_missing_file(bundle):
    with pytest.raises(UsageError, match="cannot read"):
        config.load(str(bundle))
    (bundle / "config.json").write_text("{")
    with pytest.raises(UsageError, match="not valid JSON"):
        config.load(str(bundle))


def test_process_json_for_exec(bundle):
    p = config.parse_process({"args": ["ls"], "cwd": "/", "terminal": True,
                              "user": {"uid": 5, "gid": 6, "additionalGids": [7]}})
    assert (p.uid, p.gid, p.gids, p.terminal) == (5, 6, (7,), True)
    with pytest.raises(UsageError, match="process.user.additionalGids"):
        config.parse_process({"args": ["ls"], "user": {"additionalGids": ["x"]}})


def test_state_json(tmp_path):
    st = state.make(str(tmp_path), "c1", {"bundle": "/b", "rootfs": "/b/rootfs",
                                          "annotations": {"a": "b"}, "pid": os.getpid()})
    state.record_pid(st, os.getpid())
    st.save()
    again = state.load(str(tmp_path), "c1")
    doc = again.oci()
    assert doc["ociVersion"] == config.OCI_VERSION
    assert (doc["id"], doc["status"], doc["pid"], doc["bundle"], doc["annotations"]) == \
        ("c1", "running", os.getpid(), "/b", {"a": "b"})
    open(again.fifo, "w").close()
    assert again.oci()["status"] == "created"
    again.data["pid_start"] = -1   # the PID is someone else's now
    assert again.oci()["status"] == "stopped" and again.oci()["pid"] == 0
    with pytest.raises(Exception, match="already exists"):
        state.make(str(tmp_path), "c1", {})
    with pytest.raises(Exception, match="does not exist"):
        state.load(str(tmp_path), "c2")
    with pytest.raises(UsageError, match="invalid container id"):
        state.load(str(tmp_path), "../x")
    assert [s.id for s in state.all_states(str(tmp_path))] == ["c1"]


def test_signals_and_cgroup_paths():
    assert parse_signal("9") == 9 and parse_signal("TERM") == 15
    assert parse_signal("SIGKILL") == 9 and parse_signal("sigusr1") == 10
    for bad in ("0", "NOPE", "999"):
        with pytest.raises(Exception, match="invalid signal"):
            parse_signal(bad)
    assert rel_path(None, "c1", False) == "/minirun-oci/c1"
    assert rel_path("/libpod_parent/libpod-x", "c1", False) == "/libpod_parent/libpod-x"
    assert rel_path("system.slice:minirun:c1", "c1", True) == "/system.slice/minirun-c1.scope"
    with pytest.raises(Exception):
        rel_path("/../..", "c1", False)


def test_features_lists_what_is_checked():
    f = features()
    assert "createContainer" in f["hooks"] and "rbind" in f["mountOptions"]
    assert "CAP_NET_ADMIN" in f["linux"]["capabilities"]
    assert "user" not in f["linux"]["namespaces"]


def test_extra_resources_into_the_cgroup_files(tmp_path):
    """cgroup.apply_extra against plain directories: v1's files per controller (the
    kernel-memory files only where they exist), v2's cpu.max in one line."""
    from minirun import cgroups as cg
    from minirun.errors import MinirunError
    from minirun.oci.cgroup import apply_extra
    extra = (("memory.disableOOMKiller", 1), ("memory.reservation", 4096),
             ("memory.swappiness", 10), ("memory.kernel", 8192),
             ("memory.kernelTCP", 8192), ("cpu.period", 500000), ("cpu.quota", 50000),
             ("cpu.mems", "0"))
    dirs = {c: tmp_path / "v1" / c for c in ("memory", "cpu", "cpuset")}
    for d in dirs.values():
        d.mkdir(parents=True)
    (dirs["memory"] / "memory.kmem.tcp.limit_in_bytes").write_text("")
    apply_extra(cg.group_of(1, [[[c], str(d)] for c, d in dirs.items()]), 1, extra)

    def files(d):
        return {f.name: f.read_text() for f in d.iterdir()}
    assert files(dirs["memory"]) == {
        "memory.oom_control": "1", "memory.soft_limit_in_bytes": "4096",
        "memory.swappiness": "10", "memory.kmem.tcp.limit_in_bytes": "8192"}
    assert files(dirs["cpu"]) == {"cpu.cfs_period_us": "500000",
                                  "cpu.cfs_quota_us": "50000"}
    assert files(dirs["cpuset"]) == {"cpuset.mems": "0"}
    v2 = tmp_path / "v2"
    v2.mkdir()
    g2 = cg.group_of(2, [[["cpu", "memory", "cpuset"], str(v2)]])
    apply_extra(g2, 2, (("memory.reservation", 4096), ("memory.kernel", 1),
                        ("cpu.quota", 50000), ("cpu.mems", "0")))
    assert files(v2) == {"memory.low": "4096", "cpu.max": "50000 100000", "cpuset.mems": "0"}
    with pytest.raises(MinirunError, match="disableOOMKiller is not supported on cgroup v2"):
        apply_extra(g2, 2, (("memory.disableOOMKiller", 1),))
