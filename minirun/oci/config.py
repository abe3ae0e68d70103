"""config.json (the OCI runtime spec's bundle configuration) -> a checked Spec.

Everything is checked before anything is created. A field of the spec that minirun
cannot honour is an error naming the field: never silently ignored. Some fields are
accepted only in their "nothing asked" form (an empty apparmorProfile, no uid
mappings...), so that engines which always write them still work. A property the spec
does not define at all is ignored, as its "Extensibility" section requires.
"""
from __future__ import annotations

import json
import os
import re
from ..tuples import NamedTuple

from .. import kernel as k
from ..errors import UsageError
from ..spec import Resources

OCI_VERSION = "1.0.2"
NAMESPACES = {"pid": k.CLONE_NEWPID, "network": k.CLONE_NEWNET, "mount": k.CLONE_NEWNS,
              "ipc": k.CLONE_NEWIPC, "uts": k.CLONE_NEWUTS, "cgroup": k.CLONE_NEWCGROUP}
HOOKS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop")
RLIMITS = ("RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE",
           "RLIMIT_LOCKS", "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE",
           "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
           "RLIMIT_SIGPENDING", "RLIMIT_STACK")
# Every Linux capability name with its number: caps.NUMBERS. A name there that this
# kernel does not have is left out with a warning; any other name is refused.
from ..caps import NUMBERS as LINUX_CAPS  # noqa: E402
CAP_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")
MOUNT_TYPES = ("bind", "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2")

# mount options that are flags (set, or cleared when the value is False)
MOUNT_FLAGS = {
    "ro": (k.MS_RDONLY, True), "rw": (k.MS_RDONLY, False),
    "nosuid": (k.MS_NOSUID, True), "suid": (k.MS_NOSUID, False),
    "nodev": (k.MS_NODEV, True), "dev": (k.MS_NODEV, False),
    "noexec": (k.MS_NOEXEC, True), "exec": (k.MS_NOEXEC, False),
    "noatime": (k.MS_NOATIME, True), "atime": (k.MS_NOATIME, False),
    "nodiratime": (k.MS_NODIRATIME, True), "diratime": (k.MS_NODIRATIME, False),
    "relatime": (k.MS_RELATIME, True), "norelatime": (k.MS_RELATIME, False),
    "strictatime": (k.MS_STRICTATIME, True), "nostrictatime": (k.MS_STRICTATIME, False),
    "sync": (16, True), "async": (16, False), "dirsync": (128, True),
    "mand": (64, True), "nomand": (64, False),
    "bind": (k.MS_BIND, True), "rbind": (k.MS_BIND | k.MS_REC, True),
}
MS_UNBINDABLE = 1 << 17
PROPAGATION = {"private": k.MS_PRIVATE, "rprivate": k.MS_PRIVATE | k.MS_REC,
               "slave": k.MS_SLAVE, "rslave": k.MS_SLAVE | k.MS_REC,
               "shared": k.MS_SHARED, "rshared": k.MS_SHARED | k.MS_REC,
               "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | k.MS_REC}
UNSUPPORTED_OPTIONS = {"tmpcopyup", "idmap", "ridmap", "copy-symlink", "src-nofollow",
                       "rro", "rrw", "rnosuid", "rnodev", "rnoexec", "recursive"}


class Mount(NamedTuple):
    destination: str
    type: str            # "bind" for binds whatever the file says
    source: str | None
    flags: int
    propagation: int
    data: str | None


class Device(NamedTuple):
    path: str
    type: str            # c, b, u, p
    major: int
    minor: int
    mode: int
    uid: int
    gid: int


class Hook(NamedTuple):
    path: str
    args: tuple[str, ...]
    env: tuple[str, ...]
    timeout: int | None


class Process(NamedTuple):
    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    terminal: bool = False
    uid: int = 0
    gid: int = 0
    gids: tuple[int, ...] = ()
    umask: int | None = None
    caps: dict = {}                            # set name -> tuple of names without CAP_
    rlimits: tuple[tuple[str, int, int], ...] = ()
    no_new_privs: bool = False
    oom_score_adj: int | None = None


class Spec(NamedTuple):
    bundle: str
    root: str                                  # absolute
    readonly: bool
    process: Process | None
    hostname: str | None
    mounts: tuple[Mount, ...]
    hooks: dict                                # name -> tuple[Hook]
    annotations: dict
    namespaces: tuple[tuple[str, str | None], ...]   # (type, path or None: new)
    devices: tuple[Device, ...]
    cgroups_path: str | None
    resources: Resources
    device_rules: tuple[str, ...]              # v1 devices.allow/deny lines, "a"/"c 1:3 rwm"
    device_allow: tuple[bool, ...]
    propagation: int
    seccomp: str | None                        # the profile, compact JSON (seccomp.py's format)
    sysctl: dict
    masked: tuple[str, ...]
    readonly_paths: tuple[str, ...]
    # linux.resources that minirun's Resources (Docker's flags) has no field for, as
    # (name, value) pairs, e.g. ("cpu.period", 500000); cgroup.py writes them
    cgroup_extra: tuple[tuple[str, int], ...] = ()
    warnings: tuple[str, ...] = ()             # fields accepted but ignored, said on stderr
    propagation_set: bool = False              # linux.rootfsPropagation was given

    def new_namespaces(self) -> set[str]:
        return {t for t, p in self.namespaces if p is None}

    def ns_flags(self) -> int:
        flags = 0
        for t, p in self.namespaces:
            if p is None and t != "pid":
                flags |= NAMESPACES[t]
        return flags


class _Obj:
    """One JSON object being read: each field of the spec is taken, or refused by
    empty() when minirun cannot honour it; the rest is ignored."""

    def __init__(self, d, where: str):
        if d is None:
            d = {}
        if not isinstance(d, dict):
            raise _bad(where, "must be an object")
        self.d, self.where, self.seen = d, where, set()

    def _w(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, typ, default=None):
        self.seen.add(key)
        v = self.d.get(key)
        if v is None:
            return default
        if typ is int and isinstance(v, bool) or not isinstance(v, typ):
            names = {str: "a string", int: "an integer", bool: "true or false",
                     list: "a list", dict: "an object"}
            want = names.get(typ, " or ".join(names.get(t, str(t)) for t in typ)
                             if isinstance(typ, tuple) else str(typ))
            raise _bad(self._w(key), f"must be {want}")
        return v

    def strings(self, key: str) -> tuple[str, ...]:
        v = self.get(key, list, [])
        if not all(isinstance(x, str) for x in v):
            raise _bad(self._w(key), "must be a list of strings")
        return tuple(v)

    def empty(self, *keys: str) -> None:
        """Fields accepted only when they ask for nothing."""
        for key in keys:
            self.seen.add(key)
            if self.d.get(key) not in (None, "", [], {}):
                raise _bad(self._w(key), "is not supported by minirun")

    def done(self) -> None:
        """Every field of the spec is taken (or refused by empty()) before this; what is
        left is no property of the spec, and "runtimes MUST ignore unknown properties"
        (config.md, Extensibility)."""


def _bad(where: str, why: str) -> UsageError:
    return UsageError(f"config.json: {where} {why}")


def load(bundle: str) -> Spec:
    """Read and check BUNDLE/config.json."""
    bundle = os.path.abspath(bundle)
    path = os.path.join(bundle, "config.json")
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise UsageError(f"{path}: not valid JSON ({e})") from None
    return parse(doc, bundle)


def parse(doc, bundle: str) -> Spec:
    top = _Obj(doc, "")
    version = top.get("ociVersion", str)
    if not version:
        raise _bad("ociVersion", "is missing")
    if not version.startswith("1."):
        raise _bad("ociVersion", f"{version!r} is not a 1.x version")
    root = _Obj(top.get("root", dict), "root")
    rpath = root.get("path", str)
    if not rpath:
        raise _bad("root.path", "is missing")
    readonly = root.get("readonly", bool, False)
    root.done()
    rpath = os.path.normpath(os.path.join(bundle, rpath))
    if not os.path.isdir(rpath):
        raise _bad("root.path", f"{rpath} is not a directory")
    warnings: list[str] = []
    proc = (parse_process(top.get("process", dict), "process", warnings)
            if "process" in doc else None)
    if warnings:
        warnings[:] = [f"process.capabilities: {', '.join(warnings)} unknown to this "
                       "kernel (or to python-prctl), left out"]
    hostname = top.get("hostname", str)
    top.empty("domainname", "solaris", "windows", "vm", "zos")
    mounts = tuple(_mount(m, f"mounts[{i}]")
                   for i, m in enumerate(top.get("mounts", list, [])))
    hooks = _hooks(top.get("hooks", dict))
    annotations = top.get("annotations", dict, {})
    if not all(isinstance(v, str) for v in annotations.values()):
        raise _bad("annotations", "values must be strings")
    linux = _Obj(top.get("linux", dict), "linux")
    namespaces = _namespaces(linux.get("namespaces", list, []))
    linux.empty("uidMappings", "gidMappings", "timeOffsets", "mountLabel", "intelRdt",
                "personality", "memoryPolicy", "netDevices")
    devices = tuple(_device(d, f"linux.devices[{i}]")
                    for i, d in enumerate(linux.get("devices", list, [])))
    cgroups_path = linux.get("cgroupsPath", str)
    resources, rules, allow, extra = _resources(linux.get("resources", dict))
    prop_name = linux.get("rootfsPropagation", str, "")
    if prop_name and prop_name not in PROPAGATION:
        raise _bad("linux.rootfsPropagation", f"{prop_name!r} is not one of "
                   f"{', '.join(PROPAGATION)}")
    propagation = PROPAGATION.get(prop_name, k.MS_PRIVATE | k.MS_REC)
    seccomp = _seccomp(linux.get("seccomp", dict))
    sysctl = linux.get("sysctl", dict, {})
    if not all(isinstance(v, str) for v in sysctl.values()):
        raise _bad("linux.sysctl", "values must be strings")
    masked = linux.strings("maskedPaths")
    ro_paths = linux.strings("readonlyPaths")
    linux.done()
    top.done()
    new = {t for t, p in namespaces if p is None}
    if hostname and "uts" not in new:
        raise _bad("hostname", "needs a new uts namespace")
    if sysctl and not new & {"network", "ipc"} and not any(t in ("network", "ipc")
                                                            for t, _ in namespaces):
        raise _bad("linux.sysctl", "needs a network or ipc namespace of the container")
    return Spec(bundle, rpath, readonly, proc, hostname, mounts, hooks, annotations,
                namespaces, devices, cgroups_path, resources, rules, allow, propagation,
                seccomp, sysctl, masked, ro_paths, extra, tuple(warnings),
                bool(prop_name))


def _cap_last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return max(LINUX_CAPS.values())


def parse_process(d, where: str = "process", warnings: list | None = None) -> Process:
    p = _Obj(d, where)
    args = p.strings("args")
    if not args:
        raise _bad(f"{where}.args", "must name a command")
    env = p.strings("env")
    for e in env:
        if "=" not in e:
            raise _bad(f"{where}.env", f"entry {e!r} is not NAME=VALUE")
    cwd = p.get("cwd", str, "/")
    if not cwd.startswith("/"):
        raise _bad(f"{where}.cwd", "must be an absolute path")
    terminal = p.get("terminal", bool, False)
    p.get("consoleSize", dict)  # the engine resizes the pty itself
    user = _Obj(p.get("user", dict), f"{where}.user")
    uid, gid = user.get("uid", int, 0), user.get("gid", int, 0)
    gids = tuple(user.get("additionalGids", list, []))
    if not all(isinstance(g, int) and not isinstance(g, bool) for g in gids):
        raise _bad(f"{where}.user.additionalGids", "must be a list of integers")
    umask = user.get("umask", int)
    user.empty("username")
    user.done()
    caps = {}
    cd = _Obj(p.get("capabilities", dict), f"{where}.capabilities")
    from .. import caps as capmod
    usable = set(capmod.all_names())
    last = _cap_last_cap()
    for s in CAP_SETS:
        names = []
        for n in cd.strings(s):
            name = (n[4:] if n.upper().startswith("CAP_") else n).upper()
            number = LINUX_CAPS.get(name)
            if number is None:
                raise _bad(f"{where}.capabilities.{s}", f"unknown capability {n!r}")
            if name not in usable or number > last:
                # a capability of a newer kernel than this one (or than python-prctl):
                # nothing can grant it here, so it is left out, as runc does
                if warnings is not None and f"CAP_{name}" not in warnings:
                    warnings.append(f"CAP_{name}")
                continue
            names.append(name)
        caps[s] = tuple(names)
    cd.done()
    rlimits = []
    for i, r in enumerate(p.get("rlimits", list, [])):
        ro = _Obj(r, f"{where}.rlimits[{i}]")
        t = ro.get("type", str)
        if t not in RLIMITS:
            raise _bad(f"{where}.rlimits[{i}].type", f"{t!r} is not a known rlimit")
        soft, hard = ro.get("soft", int, 0), ro.get("hard", int, 0)
        ro.done()
        if soft > hard:
            raise _bad(f"{where}.rlimits[{i}]", "soft is above hard")
        rlimits.append((t, soft, hard))
    nnp = p.get("noNewPrivileges", bool, False)
    oom = p.get("oomScoreAdj", int)
    if oom is not None and not -1000 <= oom <= 1000:
        raise _bad(f"{where}.oomScoreAdj", "must be from -1000 to 1000")
    p.empty("apparmorProfile", "selinuxLabel", "commandLine", "ioPriority", "scheduler",
            "execCPUAffinity")
    p.done()
    return Process(args, env, cwd, terminal, uid, gid, gids, umask, caps, tuple(rlimits),
                   nnp, oom)


def _mount(d, where: str) -> Mount:
    m = _Obj(d, where)
    dest = m.get("destination", str)
    if not dest or not dest.startswith("/"):
        raise _bad(f"{where}.destination", "must be an absolute path")
    typ = m.get("type", str, "")
    source = m.get("source", str)
    options = m.strings("options")
    m.empty("uidMappings", "gidMappings")
    m.done()
    flags, prop, data = 0, 0, []
    for o in options:
        if o in MOUNT_FLAGS:
            bit, on = MOUNT_FLAGS[o]
            flags = flags | bit if on else flags & ~bit
        elif o in PROPAGATION:
            prop = PROPAGATION[o]
        elif o in UNSUPPORTED_OPTIONS or o == "remount":
            raise _bad(f"{where}.options", f"{o!r} is not supported by minirun")
        else:
            data.append(o)  # a file system's own option: mode=755, size=..., newinstance
    if flags & k.MS_BIND or typ == "bind":
        typ = "bind"
        flags |= k.MS_BIND
        if not source:
            raise _bad(f"{where}.source", "is needed for a bind mount")
        # A bind takes no file system options: the kernel ignores the data of a bind
        # mount, and so does runc; engines copy tmpfs options such as mode=755 onto
        # binds. Ignored here too, but a bare word that is no mount flag is refused.
        bare = [o for o in data if "=" not in o]
        if bare:
            raise _bad(f"{where}.options", f"{bare[0]!r} is not a flag of a bind mount")
        data = []
    elif typ not in MOUNT_TYPES:
        raise _bad(f"{where}.type", f"{typ!r} is not supported (one of "
                   f"{', '.join(MOUNT_TYPES)})")
    return Mount(os.path.normpath(dest), typ, source, flags, prop,
                 ",".join(data) or None)


def _namespaces(items: list) -> tuple[tuple[str, str | None], ...]:
    out, seen = [], set()
    for i, d in enumerate(items):
        n = _Obj(d, f"linux.namespaces[{i}]")
        t, path = n.get("type", str), n.get("path", str)
        n.done()
        if t == "user":
            raise _bad(f"linux.namespaces[{i}]", "user namespaces are not supported")
        if t not in NAMESPACES:
            raise _bad(f"linux.namespaces[{i}].type", f"{t!r} is not a namespace type "
                       f"(one of {', '.join(NAMESPACES)})")
        if t in seen:
            raise _bad(f"linux.namespaces[{i}]", f"{t} namespace given twice")
        seen.add(t)
        out.append((t, path or None))
    if "mount" not in seen:
        raise _bad("linux.namespaces", "must include a mount namespace (minirun always "
                   "makes one)")
    return tuple(out)


def _device(d, where: str) -> Device:
    o = _Obj(d, where)
    path, typ = o.get("path", str), o.get("type", str)
    if not path or not path.startswith("/dev/"):
        raise _bad(f"{where}.path", "must be a path below /dev")
    if typ not in ("c", "b", "u", "p"):
        raise _bad(f"{where}.type", f"{typ!r} is not c, b, u or p")
    dev = Device(path, typ, o.get("major", int, 0), o.get("minor", int, 0),
                 o.get("fileMode", int, 0o666), o.get("uid", int, 0), o.get("gid", int, 0))
    o.done()
    return dev


def _hooks(d) -> dict:
    h = _Obj(d, "hooks")
    out = {}
    for name in HOOKS:
        items = []
        for i, x in enumerate(h.get(name, list, [])):
            o = _Obj(x, f"hooks.{name}[{i}]")
            path = o.get("path", str)
            if not path or not path.startswith("/"):
                raise _bad(f"hooks.{name}[{i}].path", "must be an absolute path")
            timeout = o.get("timeout", int)
            if timeout is not None and timeout <= 0:
                raise _bad(f"hooks.{name}[{i}].timeout", "must be positive")
            items.append(Hook(path, o.strings("args") or (path,), o.strings("env"),
                              timeout))
            o.done()
        out[name] = tuple(items)
    h.done()
    return out


_CPU_LIST = re.compile(r"\d+(-\d+)?(,\d+(-\d+)?)*")


def _resources(d) -> tuple[Resources, tuple[str, ...], tuple[bool, ...], tuple]:
    r = _Obj(d, "linux.resources")
    rules, allow = [], []
    for i, x in enumerate(r.get("devices", list, [])):
        o = _Obj(x, f"linux.resources.devices[{i}]")
        a = o.get("allow", bool, False)
        typ = o.get("type", str, "a") or "a"
        major, minor = o.get("major", int), o.get("minor", int)
        access = o.get("access", str, "rwm") or "rwm"
        o.done()
        if typ not in ("a", "c", "b") or not set(access) <= set("rwm"):
            raise _bad(f"linux.resources.devices[{i}]", "has a bad type or access")
        m = "*" if major is None or major < 0 else str(major)
        n = "*" if minor is None or minor < 0 else str(minor)
        rules.append("a" if typ == "a" and (m, n) == ("*", "*") else
                     f"{typ} {m}:{n} {access}")
        allow.append(a)
    extra: list[tuple[str, int | str]] = []
    mem = _Obj(r.get("memory", dict), "linux.resources.memory")
    limit, swap = mem.get("limit", int), mem.get("swap", int)
    if mem.get("disableOOMKiller", bool):
        extra.append(("memory.disableOOMKiller", 1))
    reservation = mem.get("reservation", int)
    if reservation is not None:
        extra.append(("memory.reservation", reservation))
    swappiness = mem.get("swappiness", int)
    if swappiness is not None:
        if not 0 <= swappiness <= 100:
            raise _bad("linux.resources.memory.swappiness", "must be from 0 to 100")
        extra.append(("memory.swappiness", swappiness))
    # kernel memory limits: deprecated by the spec, dropped by the kernel (5.16 takes
    # but ignores kmem.limit_in_bytes); written where the file is, never an error
    for key in ("kernel", "kernelTCP"):
        v = mem.get(key, int)
        if v is not None:
            extra.append((f"memory.{key}", v))
    mem.get("useHierarchy", bool)   # v1's hierarchy is always on in kernels since 6.0
    mem.empty("checkBeforeUpdate")
    mem.done()
    if limit is not None and limit <= 0:
        limit = None
    if swap is not None and swap == 0:
        swap = None
    cpu = _Obj(r.get("cpu", dict), "linux.resources.cpu")
    shares, quota = cpu.get("shares", int), cpu.get("quota", int)
    period, cpus = cpu.get("period", int), cpu.get("cpus", str)
    mems = cpu.get("mems", str)
    cpu.empty("realtimeRuntime", "realtimePeriod", "idle", "burst")
    cpu.done()
    # quota and period exactly as given (Resources.cpus would round them to Docker's
    # fixed period)
    if period is not None and period != 0:
        if not 1000 <= period <= 1000000:
            raise _bad("linux.resources.cpu.period", "must be from 1000 to 1000000 (µs)")
        extra.append(("cpu.period", period))
    if quota is not None and quota != 0:
        if quota < 1000 and quota != -1:
            raise _bad("linux.resources.cpu.quota", "must be -1 or at least 1000 (µs)")
        extra.append(("cpu.quota", quota))
    if mems:
        if not _CPU_LIST.fullmatch(mems):
            raise _bad("linux.resources.cpu.mems", f"{mems!r} is not a list of memory "
                       "nodes like 0-1,3")
        extra.append(("cpu.mems", mems))
    pids = _Obj(r.get("pids", dict), "linux.resources.pids")
    plimit = pids.get("limit", int)
    pids.done()
    if plimit is not None and plimit <= 0:
        plimit = None
    r.empty("blockIO", "hugepageLimits", "network", "rdma", "unified")
    r.done()
    res = Resources(memory=limit, memory_swap=swap, cpu_shares=shares or None,
                    pids_limit=plimit, cpuset_cpus=cpus or None)
    return res, tuple(rules), tuple(allow), tuple(extra)


def _seccomp(d) -> str | None:
    """The OCI seccomp object is the format seccomp.py reads (Docker's, minus its
    includes/excludes): checked by it, kept as compact JSON for its cache key."""
    if d is None:
        return None
    from .. import seccomp
    text = json.dumps(d, separators=(",", ":"), sort_keys=True)
    try:
        p = seccomp.parse(text, "linux.seccomp")
    except UsageError as e:
        raise UsageError(f"config.json: {e}") from None
    return json.dumps(p, separators=(",", ":"), sort_keys=True)


def default_spec(rootfs: str = "rootfs", args=("sh",), terminal: bool = True) -> dict:
    """What `minirun-oci spec` writes: a small container much like `minirun run`'s."""
    from ..caps import DEFAULT_CAPS
    caps = [f"CAP_{c}" for c in DEFAULT_CAPS]
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": terminal, "user": {"uid": 0, "gid": 0}, "args": list(args),
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"],
            "cwd": "/",
            "capabilities": {s: caps for s in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs, "readonly": True},
        "hostname": "minirun",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                         "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                            "/proc/scsi", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }
