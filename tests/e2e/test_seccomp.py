"""Seccomp and --privileged, against the real kernel, in throwaway hosts.

A tiny static C program (compiled here with `cc -static`, mounted read-only at
/t) tries each call the default profile blocks and prints the errno it got:
EPERM under the default filter, something else (success, EFAULT, ENOKEY...)
under `--security-opt seccomp=unconfined` -- so the EPERM is the filter's.
"""
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harness import ROOTFS

R = str(ROOTFS)
PROBE_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *name, long ret) {
    if (ret < 0) printf("%s %d\n", name, errno); else printf("%s 0\n", name);
}

int main(void) {
    long r;
    setvbuf(stdout, NULL, _IONBF, 0);
    r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (r == 0) _exit(0);
    if (r > 0) waitpid(r, NULL, 0);
    report("clone_newuser", r);
    r = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (r == 0) _exit(0);
    if (r > 0) waitpid(r, NULL, 0);
    report("clone_plain", r);
    report("clone3", syscall(SYS_clone3, NULL, 0));
    report("unshare_newuser", syscall(SYS_unshare, CLONE_NEWUSER));
    report("keyctl", syscall(SYS_keyctl, 0, -3, 0));
    report("add_key", syscall(SYS_add_key, "user", "minirun", "v", 1, -2));
    report("request_key", syscall(SYS_request_key, "user", "minirun-none", NULL, 0));
    report("mount", syscall(SYS_mount, (char *)1, (char *)1, (char *)1, 0, NULL));
    report("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
    report("userfaultfd", syscall(SYS_userfaultfd, 1));
    report("name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, "/", (void *)1,
                                        (void *)1, 0));
    report("personality_odd", syscall(SYS_personality, 0x0400000));
    report("socket_vsock", syscall(SYS_socket, 40, 1, 0));
    report("setns", syscall(SYS_setns, -1, 0));
    report("bpf", syscall(SYS_bpf, 0, NULL, 0));
    report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
    report("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, NULL, 0));
    report("init_module", syscall(SYS_init_module, NULL, 0, ""));
    report("umount2", syscall(SYS_umount2, "/nonexistent", 0));
    report("reboot", syscall(SYS_reboot, 0, 0, 0, NULL));
    report("swapon", syscall(SYS_swapon, "/nonexistent", 0));
    report("syslog", syscall(SYS_syslog, 10, NULL, 0));
    report("settimeofday", syscall(SYS_settimeofday, NULL, NULL));
    report("pivot_root", syscall(SYS_pivot_root, "/nonexistent", "/nonexistent"));
    report("getpid", syscall(SYS_getpid));
    return 0;
}
"""
EPERM, ENOSYS = 1, 38
# The kernel itself refuses these without the capability: EPERM either way.
CAP_CHECKED_FIRST = {"reboot", "swapon", "syslog", "settimeofday", "pivot_root"}


def run(host, *args, **kw):
    return host.minirun("run", "--rm", "--network", "none", *args, **kw)


def assert_refused(res, *words):
    assert res.returncode == 125, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minirun: "), res.stderr
    for w in words:
        assert w in lines[0], res.stderr


def seccomp_status(text):
    return dict(re.findall(r"^(Seccomp(?:_filters)?):\s*(\d+)$", text, re.M))


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    d = tmp_path_factory.mktemp("probe")
    (d / "probe.c").write_text(PROBE_C)
    res = subprocess.run([cc, "-static", "-O2", "-o", str(d / "probe"), str(d / "probe.c")],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot build a static probe: {res.stderr.strip()[:200]}")
    return d


def probe_results(host, probe, *opts):
    res = run(host, "-v", f"{probe}:/t:ro", *opts, R, "/t/probe", check=True)
    return {name: int(err) for name, err in (line.split() for line in res.stdout.splitlines())}


def test_pid1_runs_under_the_filter_and_unconfined_turns_it_off(host):
    res = run(host, R, "cat", "/proc/1/status", check=True)
    assert seccomp_status(res.stdout) == {"Seccomp": "2", "Seccomp_filters": "1"}
    res = run(host, "--security-opt", "seccomp=unconfined", R, "cat", "/proc/1/status",
              check=True)
    assert seccomp_status(res.stdout) == {"Seccomp": "0", "Seccomp_filters": "0"}
    # --init: the command, PID 2, is filtered too
    res = run(host, "--init", R, "cat", "/proc/self/status", check=True)
    assert seccomp_status(res.stdout)["Seccomp"] == "2"


def test_blocked_calls_fail_with_eperm_only_because_of_the_filter(host, probe):
    confined = probe_results(host, probe)
    free = probe_results(host, probe, "--security-opt", "seccomp=unconfined")
    assert confined["getpid"] == 0 and confined["clone_plain"] == 0
    assert confined["clone3"] == ENOSYS           # so that libc falls back to clone
    assert free["clone3"] != ENOSYS
    for name, err in confined.items():
        if name in ("getpid", "clone_plain", "clone3"):
            continue
        assert err == EPERM, (name, err)
        if name not in CAP_CHECKED_FIRST:
            assert free[name] != EPERM, (name, free[name])
    # a user namespace is what unconfined allows here, and the filter stops
    assert free["unshare_newuser"] == 0 and free["clone_newuser"] == 0


def test_busybox_unshare_user_namespace_is_refused(host):
    res = run(host, R, "unshare", "-U", "true")
    assert res.returncode != 0 and "Operation not permitted" in res.stderr, res.stderr
    res = run(host, "--security-opt", "seccomp=unconfined", R, "unshare", "-U", "true")
    assert res.returncode == 0, res.stderr


def no_mkdir_profile(tmp_path) -> Path:
    """minirun's default profile in Docker's format, without mkdir and mkdirat."""
    from minirun.seccomp import DEFAULT_PROFILE
    p = json.loads(DEFAULT_PROFILE.read_text())
    for s in p["syscalls"]:
        s["names"] = [n for n in s["names"] if n not in ("mkdir", "mkdirat")]
    f = tmp_path / "no-mkdir.json"
    f.write_text(json.dumps(p))
    return f


def test_custom_profile_denies_mkdir(host, tmp_path):
    f = no_mkdir_profile(tmp_path)
    res = run(host, "--security-opt", f"seccomp={f}", R, "sh", "-c",
              "mkdir /made; echo rc=$?; touch /file && echo touched")
    assert "rc=1" in res.stdout and "touched" in res.stdout, res.stdout + res.stderr
    assert "Operation not permitted" in res.stderr
    res = run(host, R, "sh", "-c", "mkdir /made && echo made", check=True)
    assert "made" in res.stdout


def test_bad_profiles_and_options_are_refused_before_anything_exists(host, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"defaultAction": ')
    assert_refused(run(host, "--security-opt", f"seccomp={bad}", R, "true"),
                   "seccomp profile", "not valid JSON")
    bad.write_text(json.dumps({"defaultAction": "SCMP_ACT_PARTY", "syscalls": []}))
    assert_refused(run(host, "--security-opt", f"seccomp={bad}", R, "true"),
                   "unknown action 'SCMP_ACT_PARTY'")
    assert_refused(run(host, "--security-opt", f"seccomp={tmp_path}/missing.json", R, "true"),
                   "cannot read seccomp profile")
    assert_refused(run(host, "--security-opt", "apparmor=unconfined", R, "true"),
                   "unsupported --security-opt", "seccomp=unconfined")
    assert host.minirun("ps", "-a", "-q", check=True).stdout.strip() == ""
    res = run(host, "--security-opt", "no-new-privileges", R, "grep", "NoNewPrivs",
              "/proc/self/status", check=True)
    assert res.stdout.split() == ["NoNewPrivs:", "1"]


def test_exec_gets_the_containers_filter(host, tmp_path):
    def start(name, *opts):
        host.minirun("run", "-d", "--name", name, "--network", "none", *opts, R,
                     "sleep", "1000", check=True)

    try:
        start("plain")
        start("free", "--security-opt", "seccomp=unconfined")
        start("nomkdir", "--security-opt", f"seccomp={no_mkdir_profile(tmp_path)}")
        res = host.minirun("exec", "plain", "cat", "/proc/self/status", check=True)
        assert seccomp_status(res.stdout) == {"Seccomp": "2", "Seccomp_filters": "1"}
        res = host.minirun("exec", "free", "cat", "/proc/self/status", check=True)
        assert seccomp_status(res.stdout)["Seccomp"] == "0"
        # the recorded custom profile, not the default one
        res = host.minirun("exec", "nomkdir", "mkdir", "/made")
        assert res.returncode == 1 and "Operation not permitted" in res.stderr, res.stderr
        res = host.minirun("exec", "plain", "unshare", "-U", "true")
        assert "Operation not permitted" in res.stderr
    finally:
        host.minirun("rm", "-f", "plain", "free", "nomkdir")


def test_privileged(host):
    own_bounding = re.search(r"^CapBnd:\s*(\w+)$", open("/proc/self/status").read(), re.M)[1]
    script = ("cat /proc/1/status; echo ---; cat /proc/self/mountinfo; echo ---; ls /dev; "
              "echo ---; ls /dev/pts; echo ---; touch /proc/sys/kernel/hostname && echo procsys-rw")
    res = run(host, "--privileged", R, "sh", "-c", script, check=True)
    status, mounts, dev, pts, rest = res.stdout.split("---\n")
    assert re.search(r"^CapEff:\s*(\w+)$", status, re.M)[1] == own_bounding
    assert seccomp_status(status) == {"Seccomp": "0", "Seccomp_filters": "0"}
    points = {line.split()[4]: line.split()[5] for line in mounts.splitlines()}
    assert not {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sys",
                "/proc/sysrq-trigger"} & set(points)   # nothing masked, nothing read-only
    assert points["/sys"].startswith("rw")
    assert "procsys-rw" in rest
    host_dev = set(Path("/dev").iterdir())
    for name in ("loop-control", "fuse", "net"):
        if Path("/dev", name) in host_dev:
            assert name in dev.split(), name
    assert pts.split() == ["ptmx"]   # its own devpts: none of the host's terminals
    # --cap-drop still applies
    res = run(host, "--privileged", "--cap-drop", "NET_RAW", R, "cat", "/proc/1/status",
              check=True)
    eff = int(re.search(r"^CapEff:\s*(\w+)$", res.stdout, re.M)[1], 16)
    assert eff == int(own_bounding, 16) & ~(1 << 13)   # CAP_NET_RAW is 13
    # the default container: none of it
    res = run(host, R, "sh", "-c", script.replace(" && echo procsys-rw", ""))
    status, mounts, dev, _pts, _ = res.stdout.split("---\n")
    assert re.search(r"^CapEff:\s*(\w+)$", status, re.M)[1] != own_bounding
    assert " /proc/sys ro," in mounts and "loop-control" not in dev.split()


def wait_http(host, url, want, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        res = host.run(f"curl -s -m 1 {url}")
        if res.returncode == 0 and res.stdout.strip() == want:
            return
        assert time.monotonic() < deadline, f"{url}: {res.stdout!r} {res.stderr!r}"
        time.sleep(0.05)


def test_ordinary_workload_under_the_default_filter(host):
    try:
        host.minirun("run", "-d", "--name", "web", "-p", "8080:80", R, "sh", "-c",
                     "echo hello > /var/www/index.html; exec httpd -f -p 80 -h /var/www",
                     check=True)
        rec = host.record("web")
        wait_http(host, "http://127.0.0.1:8080/", "hello")
        gateway = rec["network"]["gateway"]
        res = host.minirun("exec", "web", "ping", "-c", "1", "-W", "2", gateway)
        assert res.returncode == 0, res.stdout + res.stderr
        res = host.minirun("exec", "web", "wget", "-q", "-O", "-", "http://127.0.0.1/")
        assert res.stdout.strip() == "hello", res.stderr
        res = host.minirun("exec", "web", "cat", "/proc/1/status", check=True)
        assert seccomp_status(res.stdout)["Seccomp"] == "2"
    finally:
        host.minirun("rm", "-f", "web")
