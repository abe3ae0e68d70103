"""Input that used to be accepted silently, half-used, or an internal error: now refused
with one clear line, exit 125, before anything is created (the inventory of the
throwaway host is the same before and after)."""

import pytest

from harness import ROOTFS

R = str(ROOTFS)


def refused(host, args, msg, *, before=None):
    """`minirun ARGS` fails with exit 125 and one line naming `msg`, nothing changes."""
    before = before if before is not None else host.inventory()
    nets = host.minirun("network", "ls").stdout
    res = host.minirun(*args)
    assert res.returncode == 125, (args, res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minirun: "), res.stderr
    assert msg in lines[0], (msg, lines[0])
    assert "internal error" not in lines[0] and "Traceback" not in res.stderr
    assert host.inventory() == before
    assert host.minirun("network", "ls").stdout == nets  # no network record either
    return lines[0]


# -- network create: reserved ranges ---------------------------------------------------

@pytest.mark.parametrize("subnet,reserved", [
    ("127.0.0.0/24", "127.0.0.0/8"),
    ("127.5.0.0/16", "127.0.0.0/8"),
    ("126.0.0.0/7", "127.0.0.0/8"),       # overlaps, without being inside
    ("0.0.0.0/24", "0.0.0.0/8"),
    ("169.254.3.0/24", "169.254.0.0/16"),
    ("224.0.0.0/24", "224.0.0.0/4"),
    ("239.255.0.0/24", "224.0.0.0/4"),
    ("240.0.0.0/24", "240.0.0.0/4"),
    ("255.255.255.0/24", "240.0.0.0/4"),
    ("0.0.0.0/1", "0.0.0.0/8"),
])
def test_network_create_refuses_reserved_subnets(host, subnet, reserved):
    line = refused(host, ["network", "create", "--subnet", subnet, "resv"], "reserved")
    assert reserved in line


@pytest.mark.parametrize("gateway", ["127.0.0.1", "169.254.0.1", "224.0.0.1", "0.0.0.1",
                                     "255.255.255.255"])
def test_network_create_refuses_a_reserved_gateway(host, gateway):
    line = refused(host, ["network", "create", "--subnet", "10.77.0.0/24", "--gateway",
                          gateway, "resv"], "reserved")
    assert gateway in line


def test_network_create_still_accepts_ordinary_subnets(host):
    res = host.minirun("network", "create", "--subnet", "10.77.0.0/24", "ok", check=True)
    assert res.stdout.strip() == "ok"
    host.minirun("network", "rm", "ok", check=True)


# -- --ip needs a bridge network ------------------------------------------------------

@pytest.mark.parametrize("network", ["none", "host", "container:whatever"])
def test_ip_without_a_bridge_network_is_refused(host, network):
    refused(host, ["run", "--rm", "--network", network, "--ip", "10.99.0.50", R, "true"],
            "--ip needs a bridge network")


# -- environment variables ------------------------------------------------------------

def env_file(host, name, text):
    p = host.dir / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(p)


def test_env_file_export_prefix_is_refused_with_file_and_line(host):
    f = env_file(host, "exports.env", "# a comment\nA=1\n\nexport D=4\n")
    line = refused(host, ["run", "--rm", "--network", "none", "--env-file", f, R, "env"],
                   "'export D'")
    assert f"{f} line 4" in line and "whitespace" in line


@pytest.mark.parametrize("text,lineno,why", [
    ("A B=1\n", 1, "whitespace"),
    ("OK=1\n=novalue\n", 2, "empty"),
    ("OK=1\nTAB\tX=1\n", 2, "whitespace"),
])
def test_env_file_bad_names(host, text, lineno, why):
    f = env_file(host, "bad.env", text)
    line = refused(host, ["run", "--rm", "--network", "none", "--env-file", f, R, "env"],
                   f"{f} line {lineno}")
    assert why in line


def test_env_file_not_utf8_is_refused(host):
    f = env_file(host, "latin1.env", b"A=caf\xe9\n")
    refused(host, ["run", "--rm", "--network", "none", "--env-file", f, R, "env"],
            "cannot read env file")


@pytest.mark.parametrize("item,why", [("A B=1", "whitespace"), (" A=1", "whitespace"),
                                      ("A\tB", "whitespace"), ("=x", "empty")])
def test_env_option_bad_names(host, item, why):
    line = refused(host, ["run", "--rm", "--network", "none", "-e", item, R, "env"],
                   "invalid environment variable")
    assert why in line


def test_env_names_that_docker_accepts_still_work(host):
    f = env_file(host, "good.env", "  LEAD=1\nB.c-d=2\nE=with = sign\n")
    res = host.minirun("run", "--rm", "--network", "none", "--env-file", f, "-e", "x.y=3",
                       R, "env", check=True)
    env = dict(l.split("=", 1) for l in res.stdout.splitlines())
    assert env["LEAD"] == "1" and env["B.c-d"] == "2" and env["E"] == "with = sign"
    assert env["x.y"] == "3"


# -- exec -w and kill -s, against a running container ---------------------------------

@pytest.fixture
def running(host):
    host.minirun("run", "-d", "--name", "val", "--network", "none", R, "sleep", "1000",
                 check=True)
    try:
        yield host.inventory()
    finally:
        host.minirun("rm", "-f", "val")


def test_exec_workdir_must_be_absolute(host, running):
    refused(host, ["exec", "-w", "relative", "val", "pwd"], "invalid workdir 'relative'",
            before=running)


def test_exec_workdir_must_exist(host, running):
    line = refused(host, ["exec", "-w", "/missing", "val", "pwd"],
                   "cannot enter working directory /missing", before=running)
    assert "No such file or directory" in line
    # a file is not a directory either
    refused(host, ["exec", "-w", "/etc/passwd", "val", "pwd"],
            "cannot enter working directory /etc/passwd", before=running)


def test_exec_workdir_that_exists_is_used(host, running):
    res = host.minirun("exec", "-w", "/tmp", "val", "pwd", check=True)
    assert res.stdout.strip() == "/tmp"
    assert host.minirun("exec", "val", "pwd", check=True).stdout.strip() == "/"


@pytest.mark.parametrize("sig", ["99", "0", "65", "-1", "FOO", "SIGFOO", "SIG", "9x",
                                 "RTMIN+99", ""])
def test_kill_refuses_invalid_signals(host, running, sig):
    line = refused(host, ["kill", "-s", sig, "val"], "invalid signal", before=running)
    assert repr(sig) in line
    assert host.record("val")["status"] == "running"


@pytest.mark.parametrize("sig", ["KILL", "SIGKILL", "kill", "9", "sigkill"])
def test_kill_accepts_names_and_numbers(host, running, sig):
    res = host.minirun("kill", "-s", sig, "val")
    assert res.returncode == 0 and res.stdout.strip() == "val", res.stderr
