"""The operation log: `--explain` output is valid shell, in order, with its reasons; the
explain.log of a container; `--explain=only` (plan mode) records without doing."""
from __future__ import annotations

import io
import subprocess

import pytest

from minirun import oplog
from minirun.errors import UsageError
from minirun.fastpath import explain_only
from minirun.network.firewall import get_firewall
from minirun.network.firewall.base import NetworkInfo, PortForward, heredoc, why_of

NET = NetworkInfo("minirun", "minirun0", "10.88.5.0/24", "10.88.5.1")
FWD = [PortForward("tcp", None, 8080, "10.88.5.2", 80)]


@pytest.fixture(autouse=True)
def clean_oplog():
    """Every test starts and ends with no listener, no history, no plan mode."""
    oplog.unlisten_all()
    oplog._history.clear()
    oplog.dry_run = False
    yield
    oplog.unlisten_all()
    oplog._history.clear()
    oplog.dry_run = False


def test_nothing_recorded_without_a_listener():
    oplog.record("ip link add x type bridge", why="w")
    assert oplog._history == [] and not oplog.listening()


def test_explain_prints_why_above_the_command_and_heredocs_unindented():
    out = io.StringIO()
    oplog.explain_to(out)
    oplog.record("ip link add br0 type bridge", why="the switch")
    oplog.record(heredoc("nft -f -", "add table ip t\nadd chain ip t c\n"), why="rules")
    oplog.record("ip link set br0 up")
    assert out.getvalue() == (
        "# the switch\nip link add br0 type bridge\n"
        "# rules\nnft -f - <<'EOF'\nadd table ip t\nadd chain ip t c\nEOF\n"
        "ip link set br0 up\n")


def test_explain_output_is_valid_shell_and_the_heredoc_ends():
    out = io.StringIO()
    oplog.explain_to(out)
    oplog.record(heredoc("cat", "one\ntwo\n"), why="a here-document")
    oplog.record("echo after", why="runs after the here-document ended")
    res = subprocess.run(["bash", "-e"], input=out.getvalue(), capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout == "one\ntwo\nafter\n"


def test_bare_listeners_get_the_command_only():
    seen = []
    oplog.listen(seen.append)
    oplog.record("ip link del x", why="why")
    assert seen == ["ip link del x"]


def test_file_log_header_once_and_only_when_something_happens(tmp_path):
    path = tmp_path / "explain.log"
    log = oplog.log_to(path, oplog.comment("the header"))
    assert not path.exists()  # nothing recorded, nothing written
    oplog.record("a", why="first")
    oplog.record("b")
    oplog.stop_logging(log)
    oplog.record("c")
    assert path.read_text() == "# the header\n# first\na\nb\n"


def test_file_log_backlog(tmp_path):
    out = io.StringIO()
    oplog.explain_to(out)
    oplog.record("early", why="before the container had a directory")
    path = tmp_path / "explain.log"
    oplog.log_to(path, oplog.comment("run"), backlog=True)
    oplog.record("late")
    assert path.read_text() == "# run\n# before the container had a directory\nearly\nlate\n"


def test_replay_from_shows_what_another_process_appended(tmp_path):
    path = tmp_path / "explain.log"
    path.write_text("# old\nold\n")
    offset = oplog.size_of(path)
    out = io.StringIO()
    oplog.explain_to(out)
    with open(path, "a") as f:
        f.write("# the monitor\nip netns delete web\n")
    oplog.replay_from(path, offset)
    assert out.getvalue() == "# the monitor\nip netns delete web\n"
    assert oplog.size_of(tmp_path / "missing") == 0


def test_why_of_firewall_operations():
    assert "published ports" in why_of("add container abc")
    assert "network's rules" in why_of("set up network web")
    assert why_of("something else") is None


# -- --explain=only ---------------------------------------------------------------

@pytest.mark.parametrize("argv,want", [
    (["--explain=only", "run", "r", "c"], ["--explain", "run", "r", "c"]),
    (["--root", "/x", "--explain=only", "--firewall", "iptables", "network", "create", "n"],
     ["--root", "/x", "--explain", "--firewall", "iptables", "network", "create", "n"]),
    (["--explain=only", "network", "rm", "n"], ["--explain", "network", "rm", "n"]),
])
def test_explain_only_option(argv, want):
    assert explain_only(argv) == (want, True)


def test_explain_only_in_the_container_command_is_not_ours():
    argv = ["run", "r", "echo", "--explain=only"]
    assert explain_only(argv) == (argv, False)


@pytest.mark.parametrize("sub", [["rm", "x"], ["stop", "x"], ["network", "ls"], []])
def test_explain_only_refuses_what_it_cannot_plan(sub):
    with pytest.raises(UsageError):
        explain_only(["--explain=only", *sub])


def test_plan_mode_skips_side_effects_of_every_layer(tmp_path, monkeypatch):
    from minirun.network import bridge, netlink, netns
    seen = []
    oplog.listen(seen.append)
    oplog.dry_run = True
    # netlink: the step is not run
    netlink._do("ip link set x up", lambda: pytest.fail("a plan ran a netlink step"))
    # the netns name: no file, no mount; the PID is a placeholder
    monkeypatch.setattr(netns, "NETNS_DIR", str(tmp_path / "netns"))
    netns.attach("web", 1, "tag")
    assert not (tmp_path / "netns").exists()
    # a sysctl is not written (one that differs from the current value is recorded)
    cur = open("/proc/sys/net/ipv4/ip_forward").read().strip()
    bridge.set_sysctl("net.ipv4.ip_forward", "0" if cur == "1" else "1")
    assert open("/proc/sys/net/ipv4/ip_forward").read().strip() == cur
    assert seen[0] == "ip link set x up"
    # /run/netns (here a missing directory) would first become a mount point of its own
    assert seen[1].startswith("mount --rbind ") and "--make-shared" in seen[1]
    assert seen[2] == "ip netns attach web $PID"
    assert seen[3].startswith("sysctl -w net.ipv4.ip_forward=")


def test_plan_mode_firewall_records_without_applying(tmp_path):
    calls = []

    class Runner:
        def nft(self, script, *, json=False, terse=False):
            calls.append((script, json))
            if json:
                return ""
            return ""

        def run(self, argv, input=None):
            calls.append((argv, input))
            return ""

        def available(self, tool):
            return tool in ("iptables-restore", "iptables-save")

    seen = []
    oplog.listen(seen.append)
    oplog.dry_run = True
    for backend in ("nftables", "iptables"):
        calls.clear()
        fw = get_firewall(backend, runner=Runner(), lock_path=tmp_path / "lock")
        fw.setup_network(NET)
        fw.add_container("abc123", NET, FWD)
        writes = [c for c in calls if (isinstance(c[0], str) and not c[1])
                  or (isinstance(c[0], list) and c[0][0] == "iptables-restore")]
        assert writes == [], backend
    assert any("nft -f - <<'EOF'" in s for s in seen)
    assert any("iptables-restore -w --noflush <<'EOF'" in s for s in seen)
