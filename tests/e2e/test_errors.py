"""Bad input: one clear line on stderr, a documented exit code, nothing created."""
import pytest

from harness import ROOTFS

R = str(ROOTFS)

BAD_RUNS = [
    (["-p", "abc:80"], "invalid port spec"),
    (["-p", "80:abc"], "invalid port spec"),
    (["-p", "8080:80/foo"], "invalid port spec"),
    (["-p", "1.2.3.4.5:80:80"], "invalid port spec"),
    (["-p", "70000:80"], "invalid port spec"),
    (["-p", "8080:0"], "invalid port spec"),
    (["-p", "8080-8081:80-82"], "invalid port spec"),
    (["-p", "8080:80", "-p", "8080:81"], "published twice"),
    (["--name", "../x"], "invalid container name"),
    (["--name", "a;b"], "invalid container name"),
    (["--name", "a" * 300], "invalid container name"),
    (["-e", "A=\0b"], None),
    (["-e", "=x"], "invalid environment variable"),
    (["-u", "nosuchuser"], "unable to find user nosuchuser"),
    (["-u", "root:"], "invalid user"),
    (["-w", "relative"], "invalid workdir"),
    (["-v", "/nonexistent-dir:/x"], "does not exist"),
    (["-v", "relative:/x:zz"], "mode must be ro or rw"),
    (["-v", "./relative:/x"], "absolute"),
    (["--cap-add", "NOT_A_CAP"], "unknown capability"),
    (["--network", "nosuchnet"], "no such network"),
    (["--hostname", "bad_host!"], "invalid hostname"),
    (["--ip", "300.1.1.1"], "invalid --ip"),
    (["--network", "none", "--ip", "10.99.0.9"], "--ip needs a bridge network"),
    (["--network", "host", "--ip", "10.99.0.9"], "--ip needs a bridge network"),
    (["-e", "export A=1"], "contains whitespace"),
    (["-e", "A\tB"], "contains whitespace"),
]


@pytest.mark.parametrize("args,msg", BAD_RUNS)
def test_bad_run_input(host, args, msg):
    if "\0" in "".join(args):
        pytest.skip("a NUL byte cannot be passed in argv; covered by the unit test of parse_env")
    res = host.minirun("run", *args, R, "true")
    assert res.returncode == 125, res.stderr
    line = res.stderr.strip()
    assert line.startswith("minirun: ") and "\n" not in line and msg in line
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("rootfs,msg", [("/nonexistent", "does not exist"),
                                        ("/etc/passwd", "not a directory"),
                                        ("/", "host's root")])
def test_bad_rootfs(host, rootfs, msg):
    res = host.minirun("run", rootfs, "true")
    assert res.returncode == 125 and msg in res.stderr


def test_missing_command_is_a_usage_error(host):
    res = host.minirun("run", R)
    assert res.returncode == 2


def test_unknown_container(host):
    for verb in (["stop"], ["kill"], ["rm"], ["inspect"], ["top"], ["logs"], ["port"],
                 ["exec"]):
        args = verb + ["ghost"] + (["true"] if verb == ["exec"] else [])
        res = host.minirun(*args)
        code = 1 if verb == ["inspect"] else 125  # Docker's inspect: 1, after the others
        assert res.returncode == code and "no such container: ghost" in res.stderr, verb


def test_debug_shows_traceback(host):
    res = host.minirun("--debug", "stop", "ghost")  # (inspect reports, and goes on)
    assert "Traceback" in res.stderr
