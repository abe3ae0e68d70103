"""Seccomp: the container's system-call filter, Docker's profile format, a BPF cache.

Every container's command runs under a filter unless `--security-opt
seccomp=unconfined` or `--privileged` says otherwise. The default profile
(`seccomp_default.json`, in Docker's JSON format) is an allow-list: what
ordinary programs need is allowed, everything else fails with EPERM -- among
it the kernel's larger attack surface: new user (or any) namespaces, mount,
keyrings, bpf, perf, kexec, modules, open_by_handle_at, userfaultfd, reboot,
swap, the clock, ... Some calls are allowed only to a container that holds
the capability they need anyway (mount with CAP_SYS_ADMIN, as in Docker).

A profile is turned into a BPF program by libseccomp (through `pyseccomp`, a
ctypes binding with libseccomp's own Python API), *once*: the program is
cached in a file keyed by the effective rules (after the capability, arch and
kernel conditions are applied) and the machine, so the start path reads a few
KB and never imports libseccomp. The container's init loads it with one
prctl(PR_SET_SECCOMP) right before execve (kernel.seccomp_load_bpf).

Docker's format, what is supported: defaultAction, defaultErrnoRet,
architectures or archMap (the native entry and its subArchitectures),
syscalls[] with names (or name), action, errnoRet, args[] (index, value,
valueTwo, op; several conditions on the same argument are alternatives, as
in runc), includes/excludes by caps, arches and minKernel, comment. Where two
rules name the same call without conditions the more restrictive action wins
(libseccomp would keep whichever came first).
Not supported (refused with a message): SCMP_ACT_NOTIFY (listenerPath),
flags, includes/excludes by anything else.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from .tuples import NamedTuple

from .errors import UsageError

DEFAULT_PROFILE = Path(__file__).with_name("seccomp_default.json")
COMPILER = 1   # bump when compile() changes what it makes of the same rules

ACTIONS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS",
           "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW",
           "SCMP_ACT_LOG")
SEVERITY = ("SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD",
            "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_LOG",
            "SCMP_ACT_ALLOW")
OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
       "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}

_LE, _64 = 0x40000000, 0x80000000
# libseccomp's names -> AUDIT_ARCH_* values (what pyseccomp.Arch holds)
ARCHES = {"SCMP_ARCH_X86": 3 | _LE, "SCMP_ARCH_X86_64": 62 | _64 | _LE,
          "SCMP_ARCH_X32": 62 | _LE, "SCMP_ARCH_ARM": 40 | _LE,
          "SCMP_ARCH_AARCH64": 183 | _64 | _LE, "SCMP_ARCH_MIPS": 8,
          "SCMP_ARCH_MIPS64": 8 | _64, "SCMP_ARCH_MIPS64N32": 8 | _64 | 0x20000000,
          "SCMP_ARCH_MIPSEL": 8 | _LE, "SCMP_ARCH_MIPSEL64": 8 | _64 | _LE,
          "SCMP_ARCH_MIPSEL64N32": 8 | _64 | _LE | 0x20000000, "SCMP_ARCH_PPC": 20,
          "SCMP_ARCH_PPC64": 21 | _64, "SCMP_ARCH_PPC64LE": 21 | _64 | _LE,
          "SCMP_ARCH_S390": 22, "SCMP_ARCH_S390X": 22 | _64,
          "SCMP_ARCH_RISCV64": 243 | _64 | _LE}
# uname -m -> (libseccomp's name, the names Docker profiles use in includes.arches)
MACHINES = {"x86_64": ("SCMP_ARCH_X86_64", {"amd64", "x86_64"}),
            "aarch64": ("SCMP_ARCH_AARCH64", {"arm64", "aarch64"})}


class Rule(NamedTuple):
    names: tuple[str, ...]
    action: str
    errno: int | None = None
    args: tuple[tuple[int, int, int, str], ...] = ()   # (index, value, valueTwo, op)


class Filter(NamedTuple):
    """A profile with its conditions applied for one container on one machine."""
    default_action: str
    default_errno: int | None
    arches: tuple[str, ...]          # the native arch first
    rules: tuple[Rule, ...]


# -- the format ---------------------------------------------------------------------

def _bad(source: str, why: str) -> UsageError:
    return UsageError(f"seccomp profile {source}: {why}")


def _int(v, source: str, what: str, lo: int = 0, hi: int = 2**64 - 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _bad(source, f"{what} must be an integer in [{lo}, {hi}], not {v!r}")
    return v


def parse(text: str, source: str = "") -> dict:
    """Check a profile in Docker's format; returns it as a dict. Raises UsageError with
    one line naming what is wrong (and where)."""
    source = source or "(inline)"
    try:
        p = json.loads(text)
    except ValueError as e:
        raise _bad(source, f"not valid JSON ({e})") from None
    if not isinstance(p, dict):
        raise _bad(source, "expected a JSON object")
    known = {"defaultAction", "defaultErrnoRet", "architectures", "archMap", "syscalls",
             "comment", "flags", "listenerPath", "listenerMetadata"}
    for key in p:
        if key not in known:
            raise _bad(source, f"unknown key {key!r}")
    if p.get("listenerPath") or p.get("listenerMetadata"):
        raise _bad(source, "listenerPath (SCMP_ACT_NOTIFY) is not supported")
    if p.get("flags"):
        raise _bad(source, f"flags {p['flags']!r} are not supported")
    if "defaultAction" not in p:
        raise _bad(source, "defaultAction is missing")
    _action(p["defaultAction"], source, "defaultAction")
    if p.get("defaultErrnoRet") is not None:
        _int(p["defaultErrnoRet"], source, "defaultErrnoRet", 0, 4095)
    if p.get("architectures") and p.get("archMap"):
        raise _bad(source, "give architectures or archMap, not both")
    for a in p.get("architectures") or ():
        _arch(a, source)
    for i, m in enumerate(p.get("archMap") or ()):
        if not isinstance(m, dict) or "architecture" not in m:
            raise _bad(source, f"archMap[{i}] needs an architecture")
        for a in [m["architecture"], *(m.get("subArchitectures") or ())]:
            _arch(a, source)
    syscalls = p.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise _bad(source, "syscalls must be a list")
    for i, s in enumerate(syscalls):
        _syscall(s, source, f"syscalls[{i}]")
    return p


def _action(a, source: str, where: str) -> str:
    if a == "SCMP_ACT_NOTIFY":
        raise _bad(source, f"{where}: SCMP_ACT_NOTIFY is not supported")
    if a not in ACTIONS:
        raise _bad(source, f"{where}: unknown action {a!r} (one of {', '.join(ACTIONS)})")
    return a


def _arch(a, source: str) -> None:
    if a not in ARCHES:
        raise _bad(source, f"unknown architecture {a!r}")


def _syscall(s, source: str, where: str) -> None:
    if not isinstance(s, dict):
        raise _bad(source, f"{where} must be an object")
    for key in s:
        if key not in ("name", "names", "action", "errnoRet", "args", "comment",
                       "includes", "excludes"):
            raise _bad(source, f"{where}: unknown key {key!r}")
    names = list(s.get("names") or ()) + ([s["name"]] if s.get("name") else [])
    if not names or not all(isinstance(n, str) and n for n in names):
        raise _bad(source, f"{where}: names must be a list of system call names")
    if "action" not in s:
        raise _bad(source, f"{where}: action is missing")
    _action(s["action"], source, where)
    if s.get("errnoRet") is not None:
        _int(s["errnoRet"], source, f"{where}.errnoRet", 0, 4095)
    args = s.get("args") or []
    if not isinstance(args, list) or len(args) > 6:
        raise _bad(source, f"{where}: args must be a list of at most 6 conditions")
    for j, a in enumerate(args):
        w = f"{where}.args[{j}]"
        if not isinstance(a, dict):
            raise _bad(source, f"{w} must be an object")
        _int(a.get("index"), source, f"{w}.index", 0, 5)
        _int(a.get("value", 0), source, f"{w}.value")
        _int(a.get("valueTwo", 0), source, f"{w}.valueTwo")
        if a.get("op") not in OPS:
            raise _bad(source, f"{w}: unknown op {a.get('op')!r} (one of {', '.join(OPS)})")
    for cond in ("includes", "excludes"):
        c = s.get(cond) or {}
        if not isinstance(c, dict):
            raise _bad(source, f"{where}.{cond} must be an object")
        for key, v in c.items():
            if key not in ("caps", "arches", "minKernel"):
                raise _bad(source, f"{where}.{cond}.{key} is not supported")
            if key == "minKernel":
                if _kernel_tuple(v) is None:
                    raise _bad(source, f"{where}.{cond}.minKernel {v!r} is not a version")
            elif not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise _bad(source, f"{where}.{cond}.{key} must be a list of names")


def _kernel_tuple(v) -> tuple[int, ...] | None:
    if not isinstance(v, str):
        return None
    parts = []
    for piece in v.split(".")[:3]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or None


def _cap(name: str) -> str:
    n = name.strip().upper()
    return n[4:] if n.startswith("CAP_") else n


def effective(p: dict, caps, machine: str | None = None,
              kernel: str | None = None) -> Filter:
    """The profile's rules that apply to a container with capabilities `caps` on this
    machine and kernel (Docker's includes/excludes), in a canonical form."""
    machine = machine or os.uname().machine
    kver = _kernel_tuple(kernel or os.uname().release) or (0,)
    native, goarches = MACHINES.get(machine, (None, {machine}))
    have = {_cap(c) for c in caps}

    def applies(cond: dict, include: bool) -> bool:
        if not cond:
            return True
        tests = []
        if "caps" in cond:
            cs = {_cap(c) for c in cond["caps"]}
            tests.append(cs <= have if include else not cs & have)
        if "arches" in cond:
            hit = bool(goarches & set(cond["arches"]))
            tests.append(hit if include else not hit)
        if "minKernel" in cond:
            hit = kver >= _kernel_tuple(cond["minKernel"])
            tests.append(hit if include else not hit)
        return all(tests)

    arches: list[str] = []
    if p.get("architectures"):
        arches = list(p["architectures"])
    for m in p.get("archMap") or ():
        if m["architecture"] == native:
            arches = [m["architecture"], *(m.get("subArchitectures") or ())]
    if native and native not in arches:
        arches.insert(0, native)
    elif native:
        arches.remove(native)
        arches.insert(0, native)
    rules = []
    for s in p.get("syscalls") or ():
        if not applies(s.get("includes") or {}, True) or not applies(s.get("excludes") or {},
                                                                    False):
            continue
        names = tuple(sorted(set(s.get("names") or ()) | ({s["name"]} if s.get("name")
                                                           else set())))
        err = s.get("errnoRet")
        args = tuple((a["index"], a.get("value", 0), a.get("valueTwo", 0), a["op"])
                     for a in s.get("args") or ())
        rules.append(Rule(names, s["action"], err, args))
    return Filter(p["defaultAction"], p.get("defaultErrnoRet"), tuple(arches), tuple(rules))


def _groups(args):
    """runc's rule: conditions on distinct arguments are ANDed in one rule; when one
    argument has several conditions, each condition becomes a rule of its own (OR)."""
    if not args:
        return [()]
    counts: dict[int, int] = {}
    for a in args:
        counts[a[0]] = counts.get(a[0], 0) + 1
    if any(n > 1 for n in counts.values()):
        return [(a,) for a in args]
    return [tuple(args)]


def _errno(r: Rule) -> int | None:
    if r.action in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        return 1 if r.errno is None else r.errno   # EPERM, as runc
    return None


def _default_errno(f: Filter) -> int | None:
    if f.default_action in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        return 1 if f.default_errno is None else f.default_errno
    return None


# -- compiling (libseccomp, only when the cache misses) ------------------------------

def compile_bpf(f: Filter) -> bytes:
    """The filter as a classic BPF program, made by libseccomp."""
    import tempfile
    try:
        import pyseccomp as sc
    except (ImportError, RuntimeError) as e:  # RuntimeError: libseccomp.so not found
        raise UsageError(f"seccomp: cannot load libseccomp ({e}); install libseccomp2 "
                         "and pyseccomp, or use --security-opt seccomp=unconfined") from None

    def act(action: str, err: int | None) -> int:
        if action == "SCMP_ACT_ERRNO":
            return sc.ERRNO(err)
        if action == "SCMP_ACT_TRACE":
            return sc.TRACE(err)
        return {"SCMP_ACT_KILL": sc.KILL, "SCMP_ACT_KILL_THREAD": sc.KILL_THREAD,
                "SCMP_ACT_KILL_PROCESS": sc.KILL_PROCESS, "SCMP_ACT_TRAP": sc.TRAP,
                "SCMP_ACT_ALLOW": sc.ALLOW, "SCMP_ACT_LOG": sc.LOG}[action]

    default = act(f.default_action, _default_errno(f))
    flt = sc.SyscallFilter(default)
    native = sc.system_arch()
    for a in f.arches:
        if ARCHES[a] == native or flt.exist_arch(ARCHES[a]):
            continue
        try:
            flt.add_arch(ARCHES[a])
        except OSError as e:
            raise UsageError(f"seccomp: cannot add architecture {a}: {e.strerror}") from None
    # A call made with a foreign ABI (not in the filter) gets the default action too,
    # rather than libseccomp's default of killing the thread.
    flt.set_attr(sc.Attr.ACT_BADARCH, default)
    # libseccomp keeps the first of two unconditional rules for one call (and lets an
    # unconditional rule replace conditional ones): add the most restrictive first, so
    # a deny appended to a copy of the default profile wins over its allow-list.
    for r in sorted(f.rules, key=lambda r: SEVERITY.index(r.action)):
        action = act(r.action, _errno(r))
        if action == default:
            continue  # libseccomp refuses a rule that does what the default does
        for name in r.names:
            nr = sc.resolve_syscall(sc.Arch.NATIVE, name)
            if nr == -1:  # __NR_SCMP_ERROR: unknown to this libseccomp (as Docker: skip)
                continue
            for group in _groups(r.args):
                conds = [sc.Arg(i, OPS[op], v, two) for i, v, two, op in group]
                try:
                    flt.add_rule(action, nr, *conds)
                except OSError as e:
                    raise UsageError(f"seccomp: libseccomp refuses the rule for {name}: "
                                     f"{e.strerror}") from None
    with tempfile.TemporaryFile() as out:
        flt.export_bpf(out)
        out.seek(0)
        return out.read()


# -- the cache and the start path ----------------------------------------------------

def _cache_candidates(name: str) -> list[Path]:
    dirs = [Path(__file__).with_name("libexec")]
    if os.environ.get("MINIRUN_ROOT"):
        dirs.append(Path(os.environ["MINIRUN_ROOT"]) / "libexec")
    dirs.append(Path("/var/lib/minirun/libexec"))
    return [d / name for d in dirs]


def _valid(prog: bytes) -> bool:
    return 0 < len(prog) <= 4096 * 8 and len(prog) % 8 == 0


def default_profile() -> dict:
    return json.loads(DEFAULT_PROFILE.read_text())


def cache_name(text: str, caps, machine: str, release: str) -> str:
    """The cache file of a profile's program for a capability set on a machine and kernel
    (what includes/excludes look at): no JSON is parsed when the cache hits."""
    from .state import sha256_hex
    key = sha256_hex("\0".join([str(COMPILER), machine, release, ",".join(sorted(caps)),
                                text]))[:24]
    return f"seccomp-{machine}-{key}.bpf"


def program_for(mode: str, profile: str | None, caps) -> bytes | None:
    """The BPF program of a seccomp mode ("default", "unconfined": None, "custom" with
    `profile`'s text) for a container with capabilities `caps`: read from the cache, or
    compiled with libseccomp once and cached (written whole, then renamed)."""
    if mode == "unconfined":
        return None
    text = profile if mode == "custom" else DEFAULT_PROFILE.read_text()
    u = os.uname()
    paths = _cache_candidates(cache_name(text, caps, u.machine, u.release))
    for p in paths:
        try:
            prog = p.read_bytes()
        except OSError:
            continue
        if _valid(prog):
            return prog
    prog = compile_bpf(effective(json.loads(text), caps, u.machine, u.release))
    if not _valid(prog):
        raise UsageError(f"seccomp: the filter is {len(prog) // 8} instructions, "
                         "more than the kernel's 4096")
    from . import oplog
    if oplog.skip():  # --explain=only creates nothing, not even a cache file
        return prog
    for p in paths:
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as out:
                out.write(prog)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, p)   # readers see the whole program or none
            break
        except OSError:
            try:
                tmp.unlink()
            except OSError:
                pass
    return prog


def program(cfg) -> bytes | None:
    """The BPF program for a container's Config (its `seccomp`, `seccomp_profile` and
    `caps`), or None when it runs unconfined. Used by `run` and by `exec`."""
    return program_for(cfg.seccomp, cfg.seccomp_profile, cfg.caps)


# -- --security-opt ------------------------------------------------------------------

SUPPORTED = "seccomp=unconfined, seccomp=PROFILE.json, no-new-privileges"


def security_opts(values) -> tuple[str, str | None]:
    """--security-opt values -> (mode, profile): mode "default", "unconfined" or "custom"
    (profile: the checked profile's text, compact). The last seccomp= wins, as in Docker."""
    mode, profile = "default", None
    for v in values:
        key, sep, val = v.partition("=")
        if not sep:
            key, sep, val = v.partition(":")   # Docker's older `seccomp:FILE` form
        if key == "no-new-privileges":
            if val.lower() in ("", "true"):
                continue   # always on in minirun
            raise UsageError("--security-opt no-new-privileges cannot be turned off: "
                             "minirun always sets it")
        if key != "seccomp" or not val:
            raise UsageError(f"unsupported --security-opt {v!r}: minirun supports "
                             f"{SUPPORTED}")
        if val == "unconfined":
            mode, profile = "unconfined", None
            continue
        try:
            text = Path(val).read_text()
        except OSError as e:
            raise UsageError(f"cannot read seccomp profile {val!r}: "
                             f"{e.strerror or e}") from None
        except UnicodeDecodeError:
            raise UsageError(f"seccomp profile {val}: not UTF-8 text") from None
        mode, profile = "custom", json.dumps(parse(text, val), separators=(",", ":"))
    return mode, profile


def check(mode: str, profile: str | None, caps) -> None:
    """Compile (or find cached) a custom profile's program at `run` time, so a profile
    libseccomp refuses is bad input (exit 125, nothing created), not a failed start."""
    if mode == "custom":
        program_for(mode, profile, caps)
