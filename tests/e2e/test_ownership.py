"""Never touch what is not ours, heal what was lost: each test failed on the code before the
ownership redesign (record, journal, tokens) and passes now. All inside throwaway hosts."""

import pytest

from harness import MINIRUN, ROOTFS
from test_network import BACKENDS, HOST_IP, LAN_IP, curl, lan, wait_http, web  # noqa: F401

R = str(ROOTFS)


def other_root(host, *args, check=False):
    """minirun under a second state root, in the same throwaway host."""
    env = ["env", f"MINIRUN_ROOT={host.dir}/lib2", f"MINIRUN_RUNROOT={host.dir}/run2"]
    res = host.run(env + MINIRUN + list(args))
    if check:
        assert res.returncode == 0, res.stderr
    return res


# -- defect 1: an administrator's network namespace --------------------------------

def test_admins_netns_is_refused_and_survives(host):
    host.sh("ip netns add web")
    res = host.minirun("run", "--name", "web", R, "true")
    assert res.returncode == 125
    assert "network namespace named 'web' already exists" in res.stderr
    assert res.stderr.count("\n") == 1
    assert "web" in host.sh("ip netns list")
    host.sh("ip netns exec web true")  # still a working namespace
    host.sh("ip netns del web")


def test_admins_netns_made_after_ours_survives_our_teardown(host):
    """The name once was ours; someone replaced it: rm must leave theirs alone."""
    host.minirun("run", "-d", "--name", "web", "--network", "none", R, "sleep", "1000",
                 check=True)
    host.sh("ip netns del web && ip netns add web")
    res = host.minirun("rm", "-f", "web")
    assert res.returncode == 0, res.stderr
    assert "web" in host.sh("ip netns list")
    host.sh("ip netns exec web true && ip netns del web")


# -- defect 2: an administrator's interface named like our bridge -------------------

def test_admins_bridge_is_not_taken_over(host):
    host.minirun("network", "create", "--subnet", "192.168.51.0/24", "--bridge", "br-y", "n3",
                 check=True)
    # the network's bridge was deleted by hand, and an administrator took its name
    host.sh("ip link del br-y && ip link add br-y type bridge && "
            "ip link add p1 type veth peer name p2 && ip link set p1 master br-y")
    res = host.minirun("run", "--rm", "--network", "n3", R, "true")
    assert res.returncode == 125 and "br-y" in res.stderr and "not minirun's" in res.stderr
    addrs = host.sh("ip -o addr show br-y")
    assert "192.168.51.1" not in addrs
    assert "master br-y" in host.sh("ip -o link show p1")
    assert host.minirun("inspect", "x").returncode == 1
    host.sh("ip link del p1 && ip link del br-y")
    host.minirun("network", "rm", "n3", check=True)


def test_admins_veth_named_like_our_bridge_survives(host):
    host.minirun("network", "create", "--subnet", "192.168.52.0/24", "--bridge", "br-z", "n4",
                 check=True)
    host.sh("ip link del br-z && ip link add br-z type veth peer name br-z-peer")
    res = host.minirun("run", "--rm", "--network", "n4", R, "true")
    assert res.returncode == 125 and "br-z" in res.stderr
    host.sh("ip link show br-z && ip link show br-z-peer")
    host.sh("ip link del br-z")
    host.minirun("network", "rm", "n4", check=True)


def test_admins_bridge_made_meanwhile_is_not_deleted(host):
    """Our bridge vanished and an administrator made one of the same name while a
    container ran: its removal must not delete theirs."""
    host.minirun("network", "create", "--subnet", "192.168.53.0/24", "--bridge", "br-w", "n5",
                 check=True)
    host.minirun("run", "-d", "--name", "a", "--network", "n5", R, "sleep", "1000",
                 check=True)
    host.sh("ip link del br-w && ip link add br-w type bridge")
    host.minirun("rm", "-f", "a", check=True)
    host.sh("ip link show br-w && ip link del br-w")
    host.minirun("network", "rm", "n5", check=True)


# -- defect 3: a second state root --------------------------------------------------

def test_second_state_root_never_removes_the_firsts_rules(host):
    web(host, "web", "-p", "8080:80")
    wait_http(host, "http://127.0.0.1:8080/", "web")
    res = other_root(host, "run", "--rm", "-p", "8081:80", R, "true")
    assert res.returncode == 125
    assert "minirun0" in res.stderr and str(host.root) in res.stderr, res.stderr
    wait_http(host, "http://127.0.0.1:8080/", "web")
    # the second root, on a network of its own, shares the table without harm
    other_root(host, "network", "create", "--subnet", "192.168.54.0/24", "n6", check=True)
    other_root(host, "run", "-d", "--name", "b", "--network", "n6", "-p", "8082:80", R, "sh",
               "-c", "echo b > /var/www/index.html; exec httpd -f -p 80 -h /var/www",
               check=True)
    wait_http(host, "http://127.0.0.1:8082/", "b")
    other_root(host, "rm", "-f", "b", check=True)
    other_root(host, "system", "prune", check=True)
    wait_http(host, "http://127.0.0.1:8080/", "web")
    host.minirun("system", "prune", check=True)
    wait_http(host, "http://127.0.0.1:8080/", "web")
    host.minirun("rm", "-f", "web", check=True)
    other_root(host, "network", "rm", "n6", check=True)
    assert host.run("nft list table ip minirun").returncode != 0


# -- defect 4: a flushed firewall is noticed and restored ---------------------------

FLUSH = {"nftables": ["nft flush ruleset", "nft flush table ip minirun"],
         "iptables": ["iptables -F; iptables -t nat -F; iptables -t raw -F"]}


@pytest.mark.parametrize("fw,flush", [(fw, f) for fw in BACKENDS for f in FLUSH[fw]])
def test_flushed_firewall_is_restored_by_the_next_command(host, lan, fw, flush):
    web(host, "web", "-p", "8080:80", fw=fw)
    wait_http(host, f"http://{HOST_IP}:8080/", "web", netns="lan")
    host.sh(flush)
    assert curl(host, f"http://{HOST_IP}:8080/", netns="lan", timeout=1) is None
    res = host.minirun("ps")
    assert res.returncode == 0
    lines = [l for l in res.stderr.splitlines() if l]
    assert len(lines) == 1 and "restored" in lines[0] and "bridge" in lines[0], res.stderr
    wait_http(host, f"http://{HOST_IP}:8080/", "web", netns="lan")
    wait_http(host, "http://127.0.0.1:8080/", "web")
    # the 127/8 guard is back, and egress works again
    guard = (host.sh("nft list chain ip minirun raw_prerouting") if fw == "nftables"
             else host.sh("iptables -t raw -S MINIRUN-PREROUTING"))
    assert "127.0.0.0/8" in guard
    out = host.minirun("--firewall", fw, "run", "--rm", "--init", R, "timeout", "5", "wget",
                       "-qO-", f"http://{LAN_IP}:8000/")
    assert out.stdout.strip() == "lan host", out.stderr
    assert host.minirun("ps").stderr == ""  # intact now: nothing more to say
    host.minirun("--firewall", fw, "rm", "-f", "web", check=True)


@pytest.mark.parametrize("fw", BACKENDS)
def test_network_reload(host, fw):
    web(host, "web", "-p", "8080:80", fw=fw)
    wait_http(host, "http://127.0.0.1:8080/", "web")
    res = host.minirun("network", "reload")
    assert res.returncode == 0 and res.stdout.split() == ["bridge"], res.stderr
    wait_http(host, "http://127.0.0.1:8080/", "web")
    host.minirun("--firewall", fw, "rm", "-f", "web", check=True)


def test_flush_then_new_run_with_a_port(host):
    """After a flush, a new `run -p` works at once (it used to fail with ENOENT)."""
    web(host, "a", "-p", "8080:80")
    host.sh("nft flush ruleset")
    web(host, "b", "-p", "8081:80")
    wait_http(host, "http://127.0.0.1:8080/", "a")
    wait_http(host, "http://127.0.0.1:8081/", "b")
    host.minirun("rm", "-f", "a", "b", check=True)


# -- defect 7: a missing firewall tool -------------------------------------------------

def _hide(host, tools):
    host.sh("touch /tmp/minirun-no-tool && chmod 644 /tmp/minirun-no-tool && " + " && ".join(
        f"mount --bind /tmp/minirun-no-tool /usr/sbin/{t}" for t in tools))


def _unhide(host, tools):
    host.sh(" ; ".join(f"umount /usr/sbin/{t}" for t in tools) + "; rm -f /tmp/minirun-no-tool",
            check=False)


def test_missing_firewall_tool_creates_nothing(host):
    tools = ["iptables-save", "iptables-restore"]
    _hide(host, tools)
    try:
        res = host.minirun("--firewall", "iptables", "run", "--rm", "--name", "x", R, "true")
        assert res.returncode == 125 and "iptables" in res.stderr
        assert res.stderr.count("\n") == 1
        assert host.minirun("inspect", "x").returncode == 1
        host.minirun("run", "--rm", "--name", "x", R, "true", check=True)  # the name is free
    finally:
        _unhide(host, tools)


def test_rm_force_always_removes_the_record(host):
    host.minirun("--firewall", "iptables", "run", "-d", "--name", "x", "-p", "8080:80", R,
                 "sleep", "1000", check=True)
    tools = ["iptables-save", "iptables-restore"]
    _hide(host, tools)
    try:
        res = host.minirun("rm", "-f", "x")
        assert res.returncode == 0 and "minirun: rm x:" in res.stderr, res.stderr
        assert host.minirun("inspect", "x").returncode == 1
    finally:
        _unhide(host, tools)
    # what could not be undone is swept once the tools are back
    host.minirun("system", "prune", check=True)


# -- defect 5 (part): the monitor keeps none of its caller's descriptors ---------------

def test_detached_monitor_does_not_hold_the_callers_lock(host):
    lock = host.dir / "caller.lock"
    cmd = " ".join(MINIRUN)
    host.sh(f"flock {lock} {cmd} run -d --name m --network none {R} sleep 1000")
    res = host.run(["flock", "-n", str(lock), "true"])
    assert res.returncode == 0, "the monitor still holds the caller's flock"
    host.minirun("rm", "-f", "m", check=True)
