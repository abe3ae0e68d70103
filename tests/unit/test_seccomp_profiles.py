"""Seccomp profiles: Docker's format checked, the default profile's decisions.

The decisions are read from the real BPF program libseccomp makes (the one the
container loads), run by a small classic-BPF interpreter on a seccomp_data
built for each call: what the kernel would answer, not what the rules say.
"""
from __future__ import annotations

import errno
import json
import os
import stat
import struct

import pytest

from minirun import seccomp
from minirun.caps import DEFAULT_CAPS
from minirun.errors import SyscallError, UsageError

sc = pytest.importorskip("pyseccomp")

ALLOW, ERRNO, KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
MACHINE = os.uname().machine
pytestmark = pytest.mark.skipif(MACHINE not in seccomp.MACHINES,
                                reason=f"no default arch mapping for {MACHINE}")


# -- a classic BPF interpreter, enough for libseccomp's output ------------------------

def run_bpf(prog: bytes, nr: int, arch: int, args=()) -> int:
    args = list(args) + [0] * (6 - len(args))
    data = struct.pack("<iIQ6Q", nr, arch, 0, *[a & 0xFFFFFFFFFFFFFFFF for a in args])
    insns = [struct.unpack_from("<HBBI", prog, i) for i in range(0, len(prog), 8)]
    a = x = 0
    mem = [0] * 16
    pc = 0
    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        cls = code & 0x07
        if code == 0x20:                     # ld [k]
            a = struct.unpack_from("<I", data, k)[0]
        elif code == 0x00:                   # ld #k
            a = k
        elif code == 0x60:                   # ld M[k]
            a = mem[k]
        elif code == 0x61:                   # ldx M[k]
            x = mem[k]
        elif code == 0x01:                   # ldx #k
            x = k
        elif code == 0x02:                   # st M[k]
            mem[k] = a
        elif code == 0x03:                   # stx M[k]
            mem[k] = x
        elif cls == 0x04:                    # alu
            op, src = code & 0xF0, (x if code & 0x08 else k)
            a = {0x00: a + src, 0x10: a - src, 0x50: a & src, 0x40: a | src,
                 0xA0: a ^ src, 0x60: a << src, 0x70: a >> src}[op] & 0xFFFFFFFF
        elif code == 0x05:                   # ja
            pc += k
        elif cls == 0x05:                    # conditional jumps
            op, src = code & 0xF0, (x if code & 0x08 else k)
            hit = {0x10: a == src, 0x20: a > src, 0x30: a >= src, 0x40: bool(a & src)}[op]
            pc += jt if hit else jf
        elif code == 0x06:                   # ret #k
            return k
        elif code == 0x16:                   # ret a
            return a
        elif code == 0x07:                   # tax
            x = a
        elif code == 0x87:                   # txa
            a = x
        else:
            raise AssertionError(f"BPF opcode {code:#x} not handled by the test interpreter")


NATIVE = seccomp.ARCHES[seccomp.MACHINES[MACHINE][0]]


def nr(name: str, arch: int = NATIVE) -> int:
    n = sc.resolve_syscall(arch, name)
    assert n >= 0, f"{name} is not a system call on arch {arch:#x}"
    return n


@pytest.fixture(scope="module")
def default_prog() -> bytes:
    return seccomp.compile_bpf(seccomp.effective(seccomp.default_profile(), DEFAULT_CAPS))


def decision(prog: bytes, name: str, *args, arch: int = NATIVE) -> int:
    return run_bpf(prog, nr(name, arch), arch, args)


EPERM_RET = ERRNO | errno.EPERM

BLOCKED = ("unshare", "setns", "mount", "umount2", "pivot_root", "keyctl", "add_key",
           "request_key", "bpf", "perf_event_open", "kexec_load", "kexec_file_load",
           "open_by_handle_at", "name_to_handle_at", "init_module", "finit_module",
           "delete_module", "userfaultfd", "reboot", "swapon", "swapoff", "syslog", "acct",
           "settimeofday", "clock_settime", "quotactl", "lookup_dcookie", "mbind",
           "set_mempolicy", "move_pages", "io_uring_setup", "process_vm_readv", "kcmp",
           "fsopen", "open_tree", "move_mount", "sethostname", "setdomainname", "vhangup")
BLOCKED_X86_64 = ("iopl", "ioperm")
ALLOWED = ("read", "write", "openat", "close", "execve", "exit_group", "mmap", "socket",
           "bind", "listen", "accept4", "sendto", "recvfrom", "wait4", "kill", "rt_sigaction",
           "getdents64", "mkdirat", "chroot", "setuid", "setgroups", "prctl", "seccomp",
           "ptrace", "clock_gettime", "futex", "epoll_pwait", "pipe2", "dup3", "statx",
           "mknodat", "chown" if MACHINE == "x86_64" else "fchownat")


@pytest.mark.parametrize("name", BLOCKED + (BLOCKED_X86_64 if MACHINE == "x86_64" else ()))
def test_default_blocks_kernel_attack_surface_with_eperm(default_prog, name):
    assert decision(default_prog, name) == EPERM_RET


@pytest.mark.parametrize("name", ALLOWED)
def test_default_allows_what_programs_need(default_prog, name):
    assert decision(default_prog, name) == ALLOW


def test_clone_without_namespace_flags_only(default_prog):
    SIGCHLD, CLONE_VM, CLONE_THREAD = 17, 0x100, 0x10000
    assert decision(default_prog, "clone", SIGCHLD) == ALLOW
    assert decision(default_prog, "clone", CLONE_VM | CLONE_THREAD | SIGCHLD) == ALLOW
    for flag in (0x10000000, 0x20000000, 0x40000000, 0x00020000, 0x04000000, 0x08000000,
                 0x02000000):  # NEWUSER, NEWPID, NEWNET, NEWNS, NEWUTS, NEWIPC, NEWCGROUP
        assert decision(default_prog, "clone", flag | SIGCHLD) == EPERM_RET, hex(flag)


def test_clone3_is_enosys_so_libc_falls_back(default_prog):
    assert decision(default_prog, "clone3") == ERRNO | errno.ENOSYS


def test_personality_only_the_usual_values(default_prog):
    for ok in (0, 8, 0x20000, 0x20008, 0xFFFFFFFF):
        assert decision(default_prog, "personality", ok) == ALLOW
    assert decision(default_prog, "personality", 0x0400000) == EPERM_RET  # READ_IMPLIES_EXEC


def test_sockets_but_not_vsock(default_prog):
    assert decision(default_prog, "socket", 2, 1, 0) == ALLOW      # AF_INET
    assert decision(default_prog, "socket", 2, 2, 1) == ALLOW      # ping's ICMP datagram
    assert decision(default_prog, "socket", 40, 1, 0) == EPERM_RET  # AF_VSOCK


@pytest.mark.skipif(MACHINE != "x86_64", reason="the 32-bit x86 ABI")
def test_x86_32bit_abi_filtered_like_the_native_one(default_prog):
    x86 = seccomp.ARCHES["SCMP_ARCH_X86"]
    assert decision(default_prog, "getpid", arch=x86) == ALLOW
    assert decision(default_prog, "socketcall", arch=x86) == ALLOW
    assert decision(default_prog, "keyctl", arch=x86) == EPERM_RET
    assert decision(default_prog, "unshare", arch=x86) == EPERM_RET
    # an ABI the filter does not know gets the default action, not a kill
    assert run_bpf(default_prog, 1, seccomp.ARCHES["SCMP_ARCH_PPC64LE"]) == EPERM_RET


def test_arch_specific_rules():
    f = seccomp.effective(seccomp.default_profile(), DEFAULT_CAPS, "x86_64", "6.1.0")
    names = {n for r in f.rules for n in r.names}
    assert "arch_prctl" in names and "set_tls" not in names
    assert f.arches == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")
    f = seccomp.effective(seccomp.default_profile(), DEFAULT_CAPS, "aarch64", "6.1.0")
    names = {n for r in f.rules for n in r.names}
    assert "set_tls" in names and "arch_prctl" not in names
    assert f.arches == ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM")


def test_ptrace_needs_kernel_4_8():
    def allows_ptrace(release):
        f = seccomp.effective(seccomp.default_profile(), DEFAULT_CAPS, "x86_64", release)
        return any("ptrace" in r.names for r in f.rules)
    assert allows_ptrace("4.8.0") and allows_ptrace("6.18.44-fc")
    assert not allows_ptrace("4.4.0-210-generic")


def test_capabilities_open_what_they_guard():
    caps = (*DEFAULT_CAPS, "SYS_ADMIN", "SYS_TIME")
    prog = seccomp.compile_bpf(seccomp.effective(seccomp.default_profile(), caps))
    for name in ("mount", "umount2", "unshare", "setns", "sethostname", "clock_settime"):
        assert decision(prog, name) == ALLOW, name
    assert decision(prog, "clone", 0x10000000) == ALLOW   # as Docker with CAP_SYS_ADMIN
    assert decision(prog, "clone3") == ALLOW
    for name in ("keyctl", "kexec_load", "open_by_handle_at", "pivot_root"):
        assert decision(prog, name) == EPERM_RET, name   # never, whatever the caps
    no_chroot = [c for c in DEFAULT_CAPS if c != "SYS_CHROOT"]
    prog = seccomp.compile_bpf(seccomp.effective(seccomp.default_profile(), no_chroot))
    assert decision(prog, "chroot") == EPERM_RET


def test_default_profile_names_are_known_system_calls():
    """A typo would silently allow nothing: every name must be a system call that
    libseccomp knows on x86_64, x86, aarch64 or arm, except calls newer than it."""
    newer = {"cachestat", "fchmodat2", "map_shadow_stack", "futex_wait", "futex_wake",
             "futex_requeue", "set_mempolicy_home_node", "memfd_secret", "process_mrelease",
             "epoll_pwait2", "quotactl_fd", "landlock_add_rule", "landlock_create_ruleset",
             "landlock_restrict_self", "futex_waitv"}
    arches = [seccomp.ARCHES[a] for a in ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86",
                                          "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM")]
    unknown = []
    for s in seccomp.default_profile()["syscalls"]:
        for name in s["names"]:
            if name not in newer and all(sc.resolve_syscall(a, name) < 0 for a in arches):
                unknown.append(name)
    assert unknown == []


def test_default_profile_fits_the_kernel_limit(default_prog):
    assert 0 < len(default_prog) // 8 < 4096


# -- Docker's format ------------------------------------------------------------------

def profile(**kw) -> str:
    p = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []}
    p.update(kw)
    return json.dumps(p)


def test_default_profile_is_valid_docker_format():
    seccomp.parse(seccomp.DEFAULT_PROFILE.read_text(), "default")


@pytest.mark.parametrize("text, message", [
    ("{", "not valid JSON"),
    ("[]", "expected a JSON object"),
    (json.dumps({"syscalls": []}), "defaultAction is missing"),
    (profile(defaultAction="SCMP_ACT_FOO"), "unknown action 'SCMP_ACT_FOO'"),
    (profile(defaultAction="SCMP_ACT_NOTIFY"), "SCMP_ACT_NOTIFY is not supported"),
    (profile(listenerPath="/run/x.sock"), "listenerPath"),
    (profile(flags=["SECCOMP_FILTER_FLAG_LOG"]), "flags"),
    (profile(bogus=1), "unknown key 'bogus'"),
    (profile(defaultErrnoRet=-1), "defaultErrnoRet"),
    (profile(architectures=["SCMP_ARCH_VAX"]), "unknown architecture"),
    (profile(architectures=["SCMP_ARCH_X86_64"],
             archMap=[{"architecture": "SCMP_ARCH_X86_64"}]), "not both"),
    (profile(syscalls=[{"names": ["read"]}]), "syscalls[0]: action is missing"),
    (profile(syscalls=[{"names": [], "action": "SCMP_ACT_ALLOW"}]), "names"),
    (profile(syscalls=[{"names": ["read"], "action": "SCMP_ACT_ALLOW", "x": 1}]),
     "unknown key 'x'"),
    (profile(syscalls=[{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]),
     "args[0].index"),
    (profile(syscalls=[{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]),
     "unknown op 'SCMP_CMP_LIKE'"),
    (profile(syscalls=[{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                        "includes": {"apparmor": "x"}}]), "includes.apparmor"),
    (profile(syscalls=[{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                        "includes": {"minKernel": "new"}}]), "minKernel"),
])
def test_bad_profiles_are_refused_in_one_line(text, message):
    with pytest.raises(UsageError) as e:
        seccomp.parse(text, "p.json")
    assert message in str(e.value)
    assert str(e.value).startswith("seccomp profile p.json: ")
    assert "\n" not in str(e.value)


def test_single_name_and_docker_ops_compile():
    text = profile(defaultAction="SCMP_ACT_ALLOW", syscalls=[
        {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
        {"names": ["write"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 100, "op": "SCMP_CMP_GT"},
                  {"index": 0, "value": 50, "op": "SCMP_CMP_EQ"}]},
        {"names": ["no_such_call_anywhere"], "action": "SCMP_ACT_ERRNO"},
    ])
    prog = seccomp.compile_bpf(seccomp.effective(seccomp.parse(text), ()))
    name = "mkdir" if MACHINE == "x86_64" else "mkdirat"
    if name == "mkdir":
        assert decision(prog, "mkdir") == ERRNO | errno.EACCES
    assert decision(prog, "kill", 1, 9) == EPERM_RET       # errnoRet defaults to EPERM
    assert decision(prog, "kill", 1, 15) == ALLOW
    # two conditions on one argument are alternatives (runc's rule)
    assert decision(prog, "write", 101) == EPERM_RET
    assert decision(prog, "write", 50) == EPERM_RET
    assert decision(prog, "write", 1) == ALLOW


def test_a_deny_added_to_the_default_profile_wins():
    p = seccomp.default_profile()
    p["syscalls"].append({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": 13})
    prog = seccomp.compile_bpf(seccomp.effective(p, DEFAULT_CAPS))
    assert decision(prog, "mkdirat") == ERRNO | errno.EACCES
    assert decision(prog, "read") == ALLOW


def test_kill_and_other_actions_compile():
    text = profile(defaultAction="SCMP_ACT_KILL_PROCESS", syscalls=[
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["write"], "action": "SCMP_ACT_LOG"},
        {"names": ["getpid"], "action": "SCMP_ACT_TRAP"}])
    prog = seccomp.compile_bpf(seccomp.effective(seccomp.parse(text), ()))
    assert decision(prog, "read") == ALLOW
    assert decision(prog, "openat") == KILL_PROCESS
    assert decision(prog, "getpid") == 0x00030000


# -- --security-opt -------------------------------------------------------------------

def test_security_opts(tmp_path):
    assert seccomp.security_opts(()) == ("default", None)
    assert seccomp.security_opts(("seccomp=unconfined",)) == ("unconfined", None)
    assert seccomp.security_opts(("no-new-privileges",)) == ("default", None)
    assert seccomp.security_opts(("no-new-privileges:true",)) == ("default", None)
    f = tmp_path / "p.json"
    f.write_text(profile(syscalls=[{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]))
    mode, text = seccomp.security_opts((f"seccomp={f}",))
    assert mode == "custom" and json.loads(text)["syscalls"][0]["names"] == ["read"]
    assert seccomp.security_opts((f"seccomp:{f}",))[0] == "custom"   # Docker's old form
    # the last one wins
    assert seccomp.security_opts((f"seccomp={f}", "seccomp=unconfined"))[0] == "unconfined"


@pytest.mark.parametrize("value, message", [
    ("apparmor=unconfined", "unsupported --security-opt 'apparmor=unconfined'"),
    ("label=disable", "unsupported"),
    ("seccomp=", "unsupported"),
    ("no-new-privileges=false", "cannot be turned off"),
    ("seccomp=/nonexistent/p.json", "cannot read seccomp profile '/nonexistent/p.json'"),
])
def test_security_opts_refused(value, message):
    with pytest.raises(UsageError) as e:
        seccomp.security_opts((value,))
    assert message in str(e.value)


def test_privileged_is_unconfined(tmp_path):
    from minirun.spec import parse_security_opts
    f = tmp_path / "p.json"
    f.write_text(profile())
    assert parse_security_opts((), True) == ("unconfined", None)
    assert parse_security_opts((f"seccomp={f}",), True) == ("unconfined", None)
    assert parse_security_opts((), False) == ("default", None)


def test_spec_validate_compiles_a_custom_profile(tmp_path):
    from minirun.spec import ContainerSpec
    # libseccomp refuses this one (a condition on the 7th argument cannot be expressed
    # in the JSON checks, so forge the compact form): bad input, before anything exists
    bad = json.dumps({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 7, "value": 0, "op": "SCMP_CMP_EQ"}]}]})
    spec = ContainerSpec(rootfs="/x", command=("true",), seccomp="custom",
                         seccomp_profile=bad)
    with pytest.raises(UsageError):
        spec.validate()


# -- the cache and the loader -------------------------------------------------------

def test_program_is_cached_and_unconfined_has_none(monkeypatch, tmp_path):
    monkeypatch.setattr(seccomp, "_cache_candidates", lambda name: [tmp_path / name])
    text = profile(syscalls=[{"names": ["read"], "action": "SCMP_ACT_ALLOW"}])
    assert seccomp.program_for("unconfined", None, DEFAULT_CAPS) is None
    prog = seccomp.program_for("custom", text, DEFAULT_CAPS)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].read_bytes() == prog
    monkeypatch.setattr(seccomp, "compile_bpf", lambda f: pytest.fail("cache missed"))
    assert seccomp.program_for("custom", text, DEFAULT_CAPS) == prog
    # another capability set is another program (includes/excludes look at caps)
    with pytest.raises(BaseException):
        seccomp.program_for("custom", text, (*DEFAULT_CAPS, "SYS_ADMIN"))


def test_cache_name_depends_on_what_changes_the_program():
    base = seccomp.cache_name("{}", ("CHOWN",), "x86_64", "6.1.0")
    assert base == seccomp.cache_name("{}", ("CHOWN",), "x86_64", "6.1.0")
    assert base != seccomp.cache_name("{} ", ("CHOWN",), "x86_64", "6.1.0")
    assert base != seccomp.cache_name("{}", ("CHOWN", "SYS_ADMIN"), "x86_64", "6.1.0")
    assert base != seccomp.cache_name("{}", ("CHOWN",), "aarch64", "6.1.0")
    assert base != seccomp.cache_name("{}", ("CHOWN",), "x86_64", "4.4.0")


def test_loader_refuses_what_is_not_a_program():
    from minirun.kernel import LinuxKernel
    for bad in (b"", b"1234567", b"\0" * (4097 * 8)):
        with pytest.raises(SyscallError) as e:
            LinuxKernel().seccomp_load_bpf(bad)
        assert e.value.errno == errno.EINVAL


# -- --privileged's mount plan --------------------------------------------------------

def test_privileged_plan_masks_nothing_and_sys_is_writable():
    from minirun import kernel as k
    from minirun.rootfs import plan
    normal = plan()
    assert any(s.kind == "mask" for s in normal) and any(s.kind == "readonly" for s in normal)
    assert next(s for s in normal if s.target == "/sys").flags & k.MS_RDONLY
    priv = plan(privileged=True)
    assert not any(s.kind in ("mask", "readonly") for s in priv)
    assert not next(s for s in priv if s.target == "/sys").flags & k.MS_RDONLY
    assert next(s for s in priv if s.kind == "devices").data == "host"
    assert next(s for s in normal if s.kind == "devices").data is None


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_copy_host_devices(tmp_path):
    from minirun.rootfs import copy_host_devices
    (tmp_path / "null").touch()   # the container's own: kept, not replaced
    made = copy_host_devices(str(tmp_path))
    assert "null" not in made and "zero" in made
    st, host = os.stat(tmp_path / "zero"), os.stat("/dev/zero")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == host.st_rdev
    assert stat.S_IMODE(st.st_mode) == stat.S_IMODE(host.st_mode)
    assert not any(m.startswith(("pts/", "shm/", "mqueue/")) or m == "console" for m in made)
    assert not (tmp_path / "pts").exists()
