"""Options people pass to `run` (issue 11 item 5), end to end in throwaway hosts:
-u NAME[:GROUP], --tmpfs, --mount, named volumes, --label(-file), --cidfile, -P,
-p 0:PORT and -p RANGE:PORT, --stop-signal/--stop-timeout, --init (catatonit),
-e NAME / --env-file, and unknown flags (exit 125)."""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_images import docker_save, layer1  # noqa: E402

PASSWD = "alice:x:1000:1000:Alice:/home/alice:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n"
GROUP = "alice:x:1000:\nstaff:x:50:alice,bob\nwheel:x:10:alice\n"


@pytest.fixture
def rf(host, rootfs):
    """A copy of the test rootfs with users of its own."""
    d = host.dir / "rf"
    shutil.copytree(rootfs, d, symlinks=True)
    (d / "etc/passwd").write_text((d / "etc/passwd").read_text() + PASSWD)
    (d / "etc/group").write_text((d / "etc/group").read_text() + GROUP)
    return str(d)


def ok(host, *args) -> str:
    return host.minirun(*args, check=True).stdout


def fails(host, *args, code=125) -> str:
    res = host.minirun(*args)
    assert res.returncode == code, (args, res.returncode, res.stdout, res.stderr)
    assert len(res.stderr.splitlines()) == 1 and res.stderr.startswith("minirun: "), \
        res.stderr
    return res.stderr


def test_user_names_resolved_in_the_container(host, rf):
    out = ok(host, "run", "--rm", "-u", "alice", rf, "sh", "-c", "id; echo $HOME")
    assert out == ("uid=1000(alice) gid=1000(alice) groups=10(wheel),50(staff),1000(alice)\n"
                   "/home/alice\n"), out
    # an explicit group: that group only (runc's rule: supplementary groups are implicit)
    assert ok(host, "run", "--rm", "-u", "alice:wheel", rf, "id") == \
        "uid=1000(alice) gid=10(wheel) groups=10(wheel)\n"
    # a UID with no passwd entry gets GID 0, as Docker
    assert ok(host, "run", "--rm", "-u", "4321", rf, "id", "-g") == "0\n"
    assert ok(host, "run", "--rm", "-u", "1001", rf, "id") == \
        "uid=1001(bob) gid=1001 groups=50(staff),1001\n"
    assert ok(host, "run", "--rm", "-u", "bob:7", rf, "id", "-g") == "7\n"
    assert "unable to find user nobodyx: no matching entries in passwd file" in \
        fails(host, "run", "--rm", "-u", "nobodyx", rf, "id")
    assert "unable to find group nogroupx" in \
        fails(host, "run", "--rm", "-u", "alice:nogroupx", rf, "id")


def test_user_files_are_read_inside_the_root(host, rf):
    """/etc/passwd as a symlink: an absolute one resolves inside the rootfs, and one that
    climbs out with ../ stays inside too (never the host's /etc/passwd)."""
    d = Path(rf)
    (d / "secret").mkdir()
    (d / "secret/passwd").write_text("carol:x:4242:4242::/:/bin/sh\n")
    (d / "etc/passwd").unlink()
    (d / "etc/passwd").symlink_to("/secret/passwd")
    assert ok(host, "run", "--rm", "-u", "carol", rf, "id", "-u") == "4242\n"
    (d / "etc/passwd").unlink()
    (d / "etc/passwd").symlink_to("../../../../../../../../../etc/passwd")
    # the host's passwd has `daemon` (uid 1); the container's resolution cannot see it
    assert "daemon" in Path("/etc/passwd").read_text()
    assert "unable to find user daemon" in fails(host, "run", "--rm", "-u", "daemon", rf,
                                                 "id")


def test_tmpfs_and_mount(host, rf, tmp_path):
    out = ok(host, "run", "--rm", "--read-only", "--tmpfs", "/scratch:size=1m,mode=1770",
             rf, "sh", "-c", "grep ' /scratch ' /proc/mounts; echo hi > /scratch/f; "
             "cat /scratch/f; stat -c %a /scratch; touch /nope 2>/dev/null || echo ro")
    assert "tmpfs /scratch tmpfs rw,nosuid,nodev,noexec" in out and "size=1024k" in out
    assert out.endswith("hi\n1770\nro\n"), out
    out = ok(host, "run", "--rm", "--mount", "type=tmpfs,destination=/t,tmpfs-size=2m",
             rf, "grep", " /t ", "/proc/mounts")
    assert "size=2048k" in out and "noexec" not in out
    (tmp_path / "data").write_text("from the host\n")
    out = ok(host, "run", "--rm", "--mount", f"type=bind,src={tmp_path},target=/h,readonly",
             rf, "sh", "-c", "cat /h/data; touch /h/x 2>/dev/null || echo refused")
    assert out == "from the host\nrefused\n"
    for spec, msg in [
            ("type=bind,target=/x", 'invalid mount config for type "bind": field Source '
                                    "must not be empty"),
            ("type=bind,source=/nonexistent-x,target=/x",
             "bind source path does not exist: /nonexistent-x"),
            ("type=tmpfs,source=/tmp,target=/x", "field Source must not be specified"),
            ("type=bind,source=/tmp", "target is required"),
            ("type=bind,source=/tmp,target=/x,foo=1", "unexpected key 'foo' in 'foo=1'"),
            ("type=bind,bogus,target=/x", "invalid field 'bogus' must be a key=value pair"),
            ("type=tmpfs,target=relative", "mount path must be absolute")]:
        err = fails(host, "run", "--rm", "--mount", spec, rf, "true")
        assert msg in err, (spec, err)
    assert "invalid tmpfs option 'bogus'" in fails(host, "run", "--rm", "--tmpfs",
                                                   "/x:bogus", rf, "true")
    assert "duplicate mount point: /x" in fails(host, "run", "--rm", "--tmpfs", "/x",
                                                "-v", f"{tmp_path}:/x", rf, "true")


def test_named_volumes(host, rf):
    assert ok(host, "volume", "create", "--label", "k=v", "v1") == "v1\n"
    assert ok(host, "volume", "create", "v1") == "v1\n"  # idempotent, as Docker
    info = json.loads(ok(host, "volume", "inspect", "v1"))
    assert info[0]["Name"] == "v1" and info[0]["Labels"] == {"k": "v"}
    assert info[0]["Driver"] == "local" and info[0]["Mountpoint"].endswith("/v1/_data")
    ok(host, "run", "--rm", "-v", "v1:/data", rf, "sh", "-c", "echo kept > /data/f")
    # auto-created on first use, and --mount type=volume sees the same data
    ok(host, "run", "--name", "user", "-v", "v2:/d", rf, "cp", "/etc/hostname", "/d/")
    assert ok(host, "run", "--rm", "--mount", "source=v1,target=/m,readonly", rf,
              "sh", "-c", "cat /m/f; touch /m/g 2>/dev/null || echo ro") == "kept\nro\n"
    assert ok(host, "volume", "ls", "-q") == "v1\nv2\n"
    assert "DRIVER" in ok(host, "volume", "ls")
    err = fails(host, "volume", "rm", "v2")  # a stopped container still uses it
    assert "volume is in use" in err
    ok(host, "rm", "user")
    assert ok(host, "volume", "rm", "v1", "v2") == "v1\nv2\n"
    assert "no such volume: v1" in fails(host, "volume", "rm", "v1")
    ok(host, "volume", "rm", "-f", "v1")
    assert "invalid volume name" in fails(host, "volume", "create", "x")
    assert ok(host, "volume", "ls", "-q") == ""


def test_labels_cidfile_stop_signal(host, rf, tmp_path):
    (tmp_path / "labels").write_text("# a comment\n\nfrom.file=1\nshared=file\n")
    cid = tmp_path / "cid"
    out = ok(host, "run", "-d", "--name", "c", "--label", "a=b", "-l", "shared=flag",
             "--label-file", str(tmp_path / "labels"), "--cidfile", str(cid),
             "--stop-signal", "USR1", "--stop-timeout", "30", rf,
             "sh", "-c", "trap 'echo got USR1; exit 7' USR1; "
             "echo ready; while :; do sleep 1; done")
    assert cid.read_text() == out.strip()
    rec = host.record("c")
    assert rec["config"]["labels"] == {"a": "b", "from.file": "1", "shared": "flag"}
    assert rec["config"]["stop_signal"] == 10 and rec["config"]["stop_timeout"] == 30
    assert "container ID file found" in fails(host, "run", "--rm", "--cidfile", str(cid),
                                              rf, "true")
    host.run("until grep -q ready " + str(host.root / "containers" / out.strip() /
                                          "container.log") + "; do sleep 0.05; done",
             timeout=30)
    ok(host, "stop", "c")  # USR1 reaches the trap: it exits 7 (no SIGKILL after 30 s)
    rec = host.record("c")
    assert rec["exit_code"] == 7, rec
    assert "got USR1" in ok(host, "logs", "c")
    ok(host, "rm", "c")
    assert "invalid signal 'NOPE'" in fails(host, "run", "--rm", "--stop-signal", "NOPE",
                                             rf, "true")
    assert "invalid --stop-timeout" in fails(host, "run", "--rm", "--stop-timeout", "x",
                                             rf, "true")


def test_publish_zero_range_and_all(host, rf, layers, tmp_path):
    ok(host, "run", "-d", "--name", "a", "-p", "18000:80", rf, "sleep", "100")
    # 18000 is taken (reserved by a): the range gives the next free one
    ok(host, "run", "-d", "--name", "b", "-p", "18000-18001:80", "-p", "0:81", rf,
       "sleep", "100")
    lines = ok(host, "port", "b").splitlines()
    assert lines[0] == "80/tcp -> 0.0.0.0:18001", lines
    assert lines[1].startswith("81/tcp -> 0.0.0.0:") and not lines[1].endswith(":0")
    err = fails(host, "run", "--rm", "-p", "18000-18001:80", rf, "true")
    assert "no free host port left in 18000-18001/tcp" in err, err
    ok(host, "rm", "-f", "a", "b")
    docker_save(tmp_path / "img.tar", layers, "web:1")
    ok(host, "image", "import", str(tmp_path / "img.tar"))
    ok(host, "run", "-d", "--name", "w", "-P", "web:1", "sleep", "100")
    port = ok(host, "port", "w")
    assert port.startswith("80/tcp -> 0.0.0.0:") and port.count("\n") == 1, port
    ok(host, "rm", "-f", "w")
    ok(host, "rmi", "web:1")


@pytest.fixture(scope="module")
def layers(rootfs):
    return [layer1(rootfs)]


def test_init_is_catatonit_and_filtered(host, rf):
    assert os.path.exists("/usr/bin/catatonit")
    out = ok(host, "run", "--rm", "--init", rf, "sh", "-c",
             "tr '\\0' ' ' < /proc/1/cmdline; echo; grep Seccomp: /proc/1/status; "
             "grep Seccomp: /proc/self/status; echo $$")
    lines = out.splitlines()
    assert lines[0] == "/dev/init -- sh -c " + lines[0].split(" -c ", 1)[1]
    assert lines[1:3] == ["Seccomp:\t2", "Seccomp:\t2"]
    assert lines[3] != "1"  # the command is not PID 1: catatonit is
    # the exit code and a missing command come through as without --init
    assert host.minirun("run", "--rm", "--init", rf, "sh", "-c", "exit 3").returncode == 3
    assert host.minirun("run", "--rm", "--init", rf, "nope").returncode == 127
    # a detached container with --init stops on SIGTERM (catatonit forwards it)
    ok(host, "run", "-d", "--name", "i", "--init", "--stop-timeout", "60", rf,
       "sleep", "1000")
    ok(host, "stop", "i")
    assert host.record("i")["exit_code"] == 143
    ok(host, "rm", "i")


def test_env_from_host_and_env_file(host, rf, tmp_path):
    f = tmp_path / "env"
    f.write_text("# comment\n\n  A=1\nB=\"quoted\"  \nFROM_HOST\nNOT_ON_HOST\nC=x=y\n")
    res = host.run(["env", "FROM_HOST=h", "SET=s"] + _minirun() +
                   ["run", "--rm", "-e", "SET", "-e", "UNSET_X", "--env-file", str(f), rf,
                    "env"])
    env = dict(line.split("=", 1) for line in res.stdout.splitlines())
    assert env["A"] == "1" and env["B"] == '"quoted"  ' and env["C"] == "x=y"
    assert env["FROM_HOST"] == "h" and env["SET"] == "s"
    assert "NOT_ON_HOST" not in env and "UNSET_X" not in env
    f.write_text("export X=1\n")
    assert "whitespace" in fails(host, "run", "--rm", "--env-file", str(f), rf, "true")


def _minirun():
    from harness import MINIRUN
    return MINIRUN


@pytest.mark.parametrize("args", [["run", "--bogus", "x", "true"], ["--bogus", "ps"],
                                  ["ps", "--bogus"], ["network", "ls", "-z"],
                                  ["volume", "ls", "--nope"], ["system", "prune", "--x"]])
def test_unknown_flag_exits_125(host, args):
    err = fails(host, *args)
    assert "unknown flag: " in err and "--help" in err
