"""The click-free `run` parser must agree with click on every command line it accepts,
and hand everything else to click."""
import warnings

import pytest

from minirun import cli, fastpath


def via_click(argv):
    """What click would hand to `run` for this command line."""
    ctx = cli.main.make_context("minirun", list(argv), resilient_parsing=True)
    with warnings.catch_warnings():  # click 8.2 moves protected_args into args
        warnings.simplefilter("ignore", DeprecationWarning)
        tokens = list(ctx.protected_args) + list(ctx.args)
    sub_ctx = cli.main.get_command(ctx, tokens[0]).make_context(tokens[0], tokens[1:],
                                                                parent=ctx)
    p = dict(sub_ctx.params)
    rootfs, command = p.pop("rootfs"), list(p.pop("command"))
    p = {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.items()}
    return ctx.params, p, rootfs, command


CASES = [
    ["run", "rootfs", "true"],
    ["run", "--rm", "-p", "8080:80", "rootfs", "httpd", "-f", "-p", "80"],
    ["run", "-it", "--name=web", "-e", "A=1", "-eB=2", "rootfs", "sh"],
    ["run", "-dp", "80", "--net", "none", "--cap-add", "NET_ADMIN", "rootfs", "x", "-d"],
    ["--root", "/r", "--firewall", "iptables", "run", "-w", "/tmp", "-u", "1:2", "r", "c"],
    ["--explain", "--debug", "run", "--read-only", "--init", "-v", "/a:/b:ro", "r", "c"],
    ["run", "--", "rootfs", "--not-an-option"],
]


@pytest.mark.parametrize("argv", CASES)
def test_agrees_with_click(argv, monkeypatch):
    for var in ("MINIRUN_ROOT", "MINIRUN_RUNROOT", "MINIRUN_FIREWALL"):
        monkeypatch.delenv(var, raising=False)
    globs, opts, rootfs, command = fastpath.parse(argv)
    cglobs, copts, crootfs, ccommand = via_click(argv)
    assert (globs, opts, rootfs, command) == (cglobs, copts, crootfs, ccommand)


def test_environment_then_command_line(monkeypatch):
    monkeypatch.setenv("MINIRUN_FIREWALL", "iptables")
    monkeypatch.setenv("MINIRUN_ROOT", "/env")
    globs, *_ = fastpath.parse(["run", "r", "c"])
    assert globs["firewall"] == "iptables" and globs["root"] == "/env"
    globs, *_ = fastpath.parse(["--firewall", "nftables", "--root", "/cli", "run", "r", "c"])
    assert globs["firewall"] == "nftables" and globs["root"] == "/cli"


@pytest.mark.parametrize("argv", [
    ["run"], ["run", "--help"], ["run", "-h", "r", "c"], ["ps"],
    ["run", "--bogus", "r", "c"], ["run", "-x", "r", "c"], ["--firewall", "x", "run", "r", "c"],
    ["run", "--rm=1", "r", "c"], ["run", "-p"], ["--help"], [],
])
def test_anything_else_goes_to_click(argv):
    assert fastpath.parse(argv) is None
