"""`network create` makes the bridge ("the switch before the hosts"), `network rm` removes it.

A user-created network's bridge, gateway address and rules exist from `network
create` to `network rm`, whether containers are attached or not; the default
network stays lazy. Crash safety: `network create` SIGKILLed at each of its
crash points is cleaned up by `network rm` or by the next `network create`.
"""
import json

import pytest

from harness import MINIRUN, ROOTFS

R = str(ROOTFS)
BACKENDS = ["nftables", "iptables"]


def rules(host, fw):
    if fw == "nftables":
        return host.run("nft list table ip minirun").stdout
    return host.run("iptables-save").stdout


def bridge(host, name):
    res = host.run(f"ip -j addr show dev {name}")
    return json.loads(res.stdout)[0] if res.returncode == 0 else None


@pytest.mark.parametrize("fw", BACKENDS)
def test_bridge_lives_from_create_to_rm(host, fw):
    before = host.inventory()
    host.minirun("--firewall", fw, "network", "create", "--subnet", "192.168.15.0/24",
                 "--gateway", "192.168.15.5", "--bridge", "v-net-0", "lesson", check=True)
    b = bridge(host, "v-net-0")
    assert b is not None and "UP" in b["flags"]
    assert [(a["local"], a["prefixlen"]) for a in b["addr_info"]] == [("192.168.15.5", 24)]
    assert "minirun network lesson" in host.sh("ip -d link show v-net-0")
    assert host.sh("sysctl -n net.ipv4.ip_forward").strip() == "1"
    assert host.sh("sysctl -n net.ipv4.conf.v-net-0.route_localnet").strip() == "1"
    assert "v-net-0" in rules(host, fw) and "192.168.15.0/24" in rules(host, fw)
    mac = b["address"]
    # containers plug into it; the bridge keeps its MAC; it stays after the last one leaves
    host.minirun("--firewall", fw, "run", "-d", "--name", "a", "--network", "lesson", R,
                 "sleep", "1000", check=True)
    assert "master v-net-0" in host.sh("ip -o link show master v-net-0")
    res = host.minirun("network", "rm", "lesson")
    assert res.returncode == 125 and "attached" in res.stderr
    assert host.minirun("network", "prune", check=True).stdout.strip() == ""
    host.minirun("rm", "-f", "a", check=True)
    b = bridge(host, "v-net-0")
    assert b is not None and b["address"] == mac and b["addr_info"][0]["local"] == "192.168.15.5"
    assert "v-net-0" in rules(host, fw)
    # system prune leaves an idle network alone
    host.minirun("system", "prune", check=True)
    assert bridge(host, "v-net-0") is not None and "v-net-0" in rules(host, fw)
    host.minirun("network", "rm", "lesson", check=True)
    assert bridge(host, "v-net-0") is None and "v-net-0" not in rules(host, fw)
    assert host.inventory() == before


def test_default_network_stays_lazy(host):
    host.minirun("run", "--rm", R, "true", check=True)
    assert host.run("ip link show minirun0").returncode != 0


def test_prune_removes_idle_bridges(host):
    host.minirun("network", "create", "idle", check=True)
    assert host.run("ip link show mr-idle").returncode == 0
    assert host.minirun("network", "prune", check=True).stdout.split() == ["idle"]
    assert host.run("ip link show mr-idle").returncode != 0


@pytest.mark.parametrize("fw", BACKENDS)
def test_idle_network_rules_come_back_after_a_flush(host, fw):
    host.minirun("--firewall", fw, "network", "create", "--subnet", "192.0.2.0/24", "n",
                 check=True)
    try:
        if fw == "nftables":
            host.sh("nft flush ruleset")
        else:
            host.sh("iptables -F; iptables -t nat -F; iptables -t raw -F")
        assert "192.0.2.0/24" not in rules(host, fw)
        res = host.minirun("ps", check=True)
        assert "restored" in res.stderr and "n" in res.stderr
        assert "192.0.2.0/24" in rules(host, fw)
    finally:
        host.minirun("network", "rm", "n", check=True)


def test_bridge_of_an_idle_network_comes_back_with_reload(host):
    """After a reboot the run root is empty and the bridge gone: `network reload` remakes it."""
    host.minirun("network", "create", "--subnet", "192.0.2.0/24", "n", check=True)
    host.minirun("network", "rm", "n", check=True)
    host.minirun("network", "create", "--subnet", "192.0.2.0/24", "n", check=True)
    host.sh(f"ip link del mr-n && rm {host.runroot}/network-n.ready && nft flush ruleset")
    assert "n" in host.minirun("network", "reload", check=True).stdout.split()
    assert bridge(host, "mr-n")["addr_info"][0]["local"] == "192.0.2.1"
    host.minirun("network", "rm", "n", check=True)


def test_sigkill_at_every_point_of_create_is_cleaned_up(host):
    baseline = host.inventory()
    args = ["network", "create", "--subnet", "192.0.2.0/24", "--routed", "k"]
    trace = host.dir / "trace"
    host.run(["env", f"MINIRUN_TRACE_POINTS={trace}"] + MINIRUN + args, check=True)
    host.minirun("network", "rm", "k", check=True)
    points = list(dict.fromkeys(trace.read_text().split()))
    assert points
    for i, point in enumerate(points):
        res = host.run(["env", f"MINIRUN_KILL_AT={point}"] + MINIRUN + args)
        assert res.returncode != 0, point
        if i % 2:  # `network rm` cleans up ...
            host.minirun("network", "rm", "k")
        else:      # ... and so does the next `network create` of the name
            host.minirun(*args, check=True)
            host.minirun("network", "rm", "k", check=True)
        # the temporary file of an atomic write cut short goes with the general sweep
        host.minirun("system", "prune", check=True)
        assert host.inventory() == baseline, f"killed at {point}"


def test_admins_link_that_took_the_bridges_name_survives(host):
    """Our bridge deleted by hand and an administrator's link given its name: containers
    are refused on it, and `network rm` leaves it alone."""
    host.minirun("network", "create", "--subnet", "192.0.2.0/24", "--bridge", "br-y", "n",
                 check=True)
    host.sh("ip link del br-y && ip link add br-y type bridge && "
            "ip link add p1 type veth peer name p2 && ip link set p1 master br-y")
    try:
        res = host.minirun("run", "--rm", "--network", "n", R, "true")
        assert res.returncode == 125 and "br-y" in res.stderr and "not minirun's" in res.stderr
        assert "192.0.2.1" not in host.sh("ip -o addr show br-y")
        host.minirun("network", "rm", "n", check=True)
        assert "master br-y" in host.sh("ip -o link show p1")
    finally:
        host.sh("ip link del p1; ip link del br-y")


def test_create_refuses_an_existing_link_creating_nothing(host):
    host.sh("ip link add br-z type veth peer name br-z-peer")
    try:
        before = host.inventory()
        res = host.minirun("network", "create", "--subnet", "192.0.2.0/24", "--bridge", "br-z",
                           "n")
        assert res.returncode == 125 and "br-z" in res.stderr
        assert host.minirun("network", "inspect", "n").returncode != 0
        assert host.inventory() == before
        host.sh("ip link show br-z && ip link show br-z-peer")
    finally:
        host.sh("ip link del br-z")
