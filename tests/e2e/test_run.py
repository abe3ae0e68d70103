"""`minirun run`: isolation, the rootfs, exit codes, options. Each test in a throwaway host."""
import os

import pytest

from harness import MINIRUN, ROOTFS

R = str(ROOTFS)


def run(host, *args, **kw):
    return host.minirun("run", "--rm", "--network", "none", *args, **kw)


def test_pid1_is_the_command_and_ps_sees_only_the_container(host):
    res = run(host, R, "ps", "-o", "pid,args")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()[1:]
    assert [l.split(None, 1) for l in lines] == [["1", "ps -o pid,args"]]


def test_hostname_is_isolated_and_derived_from_the_id(host):
    res = run(host, R, "hostname")
    assert res.returncode == 0
    name = res.stdout.strip()
    assert len(name) == 12 and name != os.uname().nodename
    assert run(host, "--hostname", "web1", R, "hostname").stdout.strip() == "web1"


def test_namespaces_differ_from_the_host(host):
    res = run(host, R, "sh", "-c", "for n in pid mnt uts ipc net; do readlink /proc/1/ns/$n; done")
    inside = res.stdout.split()
    outside = [os.readlink(f"/proc/{host.pid}/ns/{n}") for n in ("pid", "mnt", "uts", "ipc", "net")]
    assert len(inside) == 5
    for a, b in zip(inside, outside):
        assert a != b


def test_root_is_pivoted_not_chrooted(host):
    # After pivot_root and detaching the old root, only the container's mounts are left.
    res = run(host, R, "cat", "/proc/self/mountinfo")
    targets = [l.split()[4] for l in res.stdout.splitlines()]
    assert targets[0] == "/"
    assert not any(t.startswith(("/work", "/home", "/tmp/minirun")) for t in targets)
    assert "/proc" in targets and "/dev" in targets and "/sys" in targets


@pytest.mark.parametrize("cmd,code", [("exit 0", 0), ("exit 3", 3), ("exit 255", 255),
                                      ("kill -TERM $$; sleep 1; exit 9", 9)])
def test_exit_code_propagates(host, cmd, code):
    assert run(host, R, "sh", "-c", cmd).returncode == code


def test_signal_death_is_128_plus_n(host):
    # PID 1 ignores signals it has no handler for; --init gives the command a normal PID.
    assert run(host, "--init", R, "sh", "-c", "kill -KILL $$").returncode == 137


def test_command_not_found_is_127_and_not_executable_is_126(host):
    res = run(host, R, "no-such-command")
    assert res.returncode == 127
    assert res.stderr.startswith("minirun: ") and "not found" in res.stderr
    assert "Traceback" not in res.stderr
    assert run(host, R, "/etc/passwd").returncode == 126
    assert run(host, R, "/etc").returncode == 126


def test_rootfs_stays_pristine(host, tmp_path):
    before = sorted(os.listdir(R))
    res = run(host, R, "sh", "-c", "echo x > /made-here && rm /bin/ls && touch /etc/passwd")
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(R)) == before
    assert os.path.islink(f"{R}/bin/ls")
    assert not os.path.exists(f"{R}/made-here")


def test_read_only_root(host):
    res = run(host, "--read-only", R, "sh", "-c", "touch /x")
    assert res.returncode != 0 and "Read-only" in res.stderr


def test_env_is_clean_and_options_apply(host):
    res = run(host, "-e", "A=1", "-e", "B=two words", "-w", "/srv/app", "-u", "1000:100",
              R, "sh", "-c", 'echo "$A|$B|$PWD|$(id -u):$(id -g)|$HOME"; env | sort')
    first, *env = res.stdout.splitlines()
    assert first == "1|two words|/srv/app|1000:100|/"
    names = {l.split("=", 1)[0] for l in env}
    assert names <= {"A", "B", "PATH", "HOME", "HOSTNAME", "PWD", "SHLVL"}


def test_env_file(host, tmp_path):
    f = tmp_path / "env"
    f.write_text("# comment\nX=from-file\n")
    assert run(host, "--env-file", str(f), R, "sh", "-c", "echo $X").stdout.strip() == "from-file"


def test_volume_rw_and_ro(host, tmp_path):
    (tmp_path / "in.txt").write_text("hello")
    res = run(host, "-v", f"{tmp_path}:/data", R, "sh", "-c", "cat /data/in.txt; echo w > /data/out")
    assert res.stdout == "hello" and (tmp_path / "out").read_text() == "w\n"
    res = run(host, "-v", f"{tmp_path}:/data:ro", R, "sh", "-c", "echo w > /data/out2")
    assert res.returncode != 0 and not (tmp_path / "out2").exists()


def test_capabilities_and_no_new_privs(host):
    res = run(host, R, "sh", "-c", "grep -E 'Cap(Eff|Bnd|Inh|Amb)|NoNewPrivs' /proc/1/status")
    fields = dict(l.split(":\t") for l in res.stdout.strip().splitlines())
    eff = int(fields["CapEff"], 16)
    assert eff == int(fields["CapBnd"], 16)
    assert not eff & (1 << 21), "CAP_SYS_ADMIN must be gone"
    assert not eff & (1 << 27), "CAP_MKNOD must be gone"
    assert eff & (1 << 10), "NET_BIND_SERVICE stays"
    assert int(fields["CapInh"], 16) == 0 and int(fields["CapAmb"], 16) == 0
    assert fields["NoNewPrivs"] == "1"
    res = run(host, "--cap-drop", "ALL", R, "grep", "CapEff", "/proc/1/status")
    assert res.stdout.split()[1] == "0000000000000000"
    res = run(host, "--cap-add", "SYS_ADMIN", R, "grep", "CapEff", "/proc/1/status")
    assert int(res.stdout.split()[1], 16) & (1 << 21)


def test_masked_and_readonly_paths(host):
    res = run(host, R, "sh", "-c", "cat /proc/kcore /proc/keys /proc/timer_list 2>/dev/null"
                                   " | wc -c; ls /proc/acpi | wc -l; "
                                   "echo 1 > /proc/sys/kernel/domainname && echo wrote; "
                                   "umount /proc/kcore && echo unmounted; "
                                   "mknod /b b 8 0 && echo mknod; touch /sys/x && echo sys")
    out = res.stdout.split()
    assert out[:2] == ["0", "0"]
    for bad in ("wrote", "unmounted", "mknod", "sys"):
        assert bad not in out


def test_dev_is_minimal(host):
    res = run(host, R, "ls", "/dev")
    assert set(res.stdout.split()) == {"core", "fd", "full", "mqueue", "null", "ptmx", "pts",
                                       "random", "shm", "stderr", "stdin", "stdout", "tty",
                                       "urandom", "zero"}


def test_no_inherited_fds_and_cwd_inside(host):
    res = host.run(f"exec 7</etc/hostname; {' '.join(MINIRUN)} run --rm --network none {R} "
                   "sh -c 'ls /proc/self/fd; readlink /proc/1/cwd'")
    lines = res.stdout.split()
    assert lines[:-1] == ["0", "1", "2", "3"]  # 3 is ls's own directory fd
    assert lines[-1] == "/"


def test_tty(host):
    res = run(host, "-t", R, "sh", "-c", "tty; test -c /dev/console && echo console")
    assert res.returncode == 0
    assert res.stdout.replace("\r", "").split() == ["/dev/pts/0", "console"]


def test_interactive_stdin(host):
    assert run(host, "-i", R, "cat", input="piped in").stdout == "piped in"
    assert run(host, R, "cat", input="ignored").stdout == ""


def test_signals_reach_the_container(host):
    proc = host.popen([*MINIRUN, "run", "--rm", "--network", "none", R, "sh",
                       "-c", "trap 'echo got-term; exit 42' TERM; echo ready; "
                             "while true; do sleep 0.1; done"],
                      stdout=-1, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.terminate()
    assert proc.wait(10) == 42
    assert proc.stdout.read().strip() == "got-term"


def test_init_reaps_and_forwards(host):
    proc = host.popen([*MINIRUN, "run", "--rm", "--init", "--network", "none",
                       R, "sh", "-c", "echo ready; sleep 100"], stdout=-1, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(2)
    assert proc.wait(10) == 130
