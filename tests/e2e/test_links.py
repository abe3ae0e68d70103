"""minirun's links, end to end inside a throwaway host (tests/harness.py):

- ownership: a link is minirun's only if it carries the MAC minirun gave it in the
  message that created it. An administrator's bridge (with a port) or veth that
  happens to carry a network's bridge name is refused, gets nothing added, and
  survives every deletion path; our own bridge is found and deleted.
- stable MACs: a bridge keeps its MAC as containers come and go, and a container
  that gets an address again gets the same MAC, so neighbours keep reaching the
  gateway and the new container without waiting for their ARP entries to expire.

Traffic only between namespaces these tests create, on 10.88.x.0/24.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time

from harness import ROOTFS, Host

R = str(ROOTFS)
OUR_MAC = "06:12:34:56:78:9a"
OUR_ALIAS = "minirun network t (root /test)"

PRELUDE = """
import json, os, sys
from minirun.errors import Conflict
from minirun.network.netlink import Netlink
nl = Netlink()
def conflict(step):
    try:
        step()
    except Conflict as e:
        return str(e)
    raise AssertionError("no Conflict")
"""


def py(host: Host, code: str) -> str:
    """Run Python inside the throwaway host (its network and mount namespaces)."""
    res = host.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)])
    assert res.returncode == 0, res.stderr
    return res.stdout


def snapshot(host: Host, name: str) -> str:
    """A link as `ip` sees it (kind, MAC, alias, master, flags, addresses)."""
    return host.sh(f"ip -d addr show dev {name} | grep -v -e valid_lft -e gc_timer "
                   "-e hello_timer -e tcn_timer -e topology_change_timer")


def link_names(host: Host) -> set[str]:
    return set(host.sh("ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//'").split())


# -- ownership --------------------------------------------------------------------

def test_admin_bridge_with_a_port_is_refused_and_survives(host):
    host.sh("""
        ip link add br-y type bridge
        ip link add yport type veth peer name ypeer
        ip link set yport master br-y up
        ip link set br-y up
    """)
    try:
        before = snapshot(host, "br-y"), snapshot(host, "yport")
        out = json.loads(py(host, f"""
            msg = conflict(lambda: nl.ensure_bridge("br-y", "10.88.7.1", 24, {OUR_MAC!r},
                                                    {OUR_ALIAS!r}))
            gone = nl.delete_bridge_if_ours("br-y", {OUR_MAC!r})
            foreign = nl.delete_links_together([("br-y", {OUR_MAC!r}), ("yport", {OUR_MAC!r}),
                                                ("absent0", {OUR_MAC!r})])
            print(json.dumps([msg, gone, foreign]))
        """))
        msg, gone, foreign = out
        assert msg == "link br-y exists and is not minirun's (a bridge)"
        assert gone is False
        assert foreign == ["br-y", "yport"]
        # nothing changed on them: no address, no alias, same MAC, port still plugged in
        assert (snapshot(host, "br-y"), snapshot(host, "yport")) == before
        assert "10.88.7.1" not in before[0]
    finally:
        host.sh("ip link del yport; ip link del br-y")


def test_admin_veth_named_like_our_bridge_is_refused_and_survives(host):
    host.sh("ip link add mr-t type veth peer name mr-t-peer && ip link set mr-t up")
    host.sh("ip netns add probe")
    try:
        before = snapshot(host, "mr-t")
        out = json.loads(py(host, f"""
            msg = conflict(lambda: nl.ensure_bridge("mr-t", "10.88.7.1", 24, {OUR_MAC!r},
                                                    {OUR_ALIAS!r}))
            fd = os.open("/run/netns/probe", os.O_RDONLY)
            # nothing is plugged into a "bridge" that is not ours
            plug = conflict(lambda: nl.add_veth("vethprobe", "eth0", fd, "probe", "mr-t",
                                                "0a:00:00:00:00:01", "02:6d:0a:58:07:02",
                                                bridge_mac={OUR_MAC!r}))
            print(json.dumps([msg, plug, nl.delete_bridge_if_ours("mr-t", {OUR_MAC!r}),
                              nl.delete_links_together([("mr-t", {OUR_MAC!r})])]))
        """))
        msg, plug, gone, foreign = out
        assert msg == "link mr-t exists and is not minirun's (a veth)"
        assert plug.startswith("cannot plug vethprobe into mr-t: the bridge is not minirun's")
        assert gone is False and foreign == ["mr-t"]
        assert snapshot(host, "mr-t") == before
        assert "vethprobe" not in link_names(host)
    finally:
        host.sh("ip link del mr-t; ip netns del probe")


def test_another_owners_bridge_is_named_in_the_refusal(host):
    other = "minirun network t (root /var/lib/other)"
    py(host, f"""
        assert nl.ensure_bridge("mr-t", "10.88.7.1", 24, "06:00:00:00:00:01", {other!r})
    """)
    try:
        msg = py(host, f"""
            print(conflict(lambda: nl.ensure_bridge("mr-t", "10.88.7.1", 24, {OUR_MAC!r},
                                                    {OUR_ALIAS!r})))
        """).strip()
        assert msg == ("link mr-t exists and is not this network's "
                       f"(a bridge labelled {other!r})")
        # its own owner still finds it
        assert py(host, f"""
            print(nl.ensure_bridge("mr-t", "10.88.7.1", 24, "06:00:00:00:00:01", {other!r}))
        """).strip() == "False"
    finally:
        host.sh("ip link del mr-t")


def test_our_bridge_and_veth_are_found_and_deleted(host):
    host.sh("ip netns add probe")
    try:
        out = json.loads(py(host, f"""
            created = nl.ensure_bridge("mr-t", "10.88.7.1", 24, {OUR_MAC.upper()!r},
                                       {OUR_ALIAS!r})
            again = nl.ensure_bridge("mr-t", "10.88.7.1", 24, {OUR_MAC!r}, {OUR_ALIAS!r})
            fd = os.open("/run/netns/probe", os.O_RDONLY)
            idx = nl.add_veth("vethprobe", "eth0", fd, "probe", "mr-t", "0a:00:00:00:00:01",
                              "02:6d:0a:58:07:02", alias="minirun container probe",
                              bridge_mac={OUR_MAC!r})
            print(json.dumps([created, again, idx, nl.link("mr-t"), nl.link("vethprobe"),
                              nl.link("nothere")]))
        """))
        created, again, idx, br, veth, nothing = out
        assert (created, again, nothing) == (True, False, None)
        assert br[1:6] == ["mr-t", "bridge", OUR_MAC, OUR_ALIAS, 0]
        assert veth[:6] == [idx, "vethprobe", "veth", "0a:00:00:00:00:01",
                            "minirun container probe", br[0]]
        assert "inet 10.88.7.1/24" in snapshot(host, "mr-t")
        assert host.sh("ip -n probe link show eth0").count("02:6d:0a:58:07:02") == 1
        assert "hairpin on" in host.sh("bridge -d link show dev vethprobe")

        # what a crash may have left undone is redone, once (no second address)
        host.sh("ip addr flush dev mr-t && ip link set mr-t down && ip link set mr-t alias x")
        py(host, f"""
            assert not nl.ensure_bridge("mr-t", "10.88.7.1", 24, {OUR_MAC!r}, {OUR_ALIAS!r})
            assert not nl.ensure_bridge("mr-t", "10.88.7.1", 24, {OUR_MAC!r}, {OUR_ALIAS!r})
        """)
        snap = snapshot(host, "mr-t")
        assert snap.count("inet 10.88.7.1/24") == 1 and f"alias {OUR_ALIAS}" in snap
        assert ",UP" in snap.splitlines()[0]

        # the wrong MAC proves nothing: untouched; the right one deletes both at once
        out = json.loads(py(host, f"""
            wrong = nl.delete_links_together([("vethprobe", "0a:00:00:00:00:02"),
                                              ("mr-t", "06:00:00:00:00:00")])
            right = nl.delete_links_together([("vethprobe", "0a:00:00:00:00:01"),
                                              ("mr-t", {OUR_MAC!r})])
            print(json.dumps([wrong, right, nl.link("mr-t"), nl.link("vethprobe")]))
        """))
        assert out == [["vethprobe", "mr-t"], [], None, None]

        py(host, f"""
            assert nl.ensure_bridge("mr-t", "10.88.7.1", 24, {OUR_MAC!r}, {OUR_ALIAS!r})
            assert not nl.delete_bridge_if_ours("mr-t", "06:00:00:00:00:00")
            assert nl.delete_bridge_if_ours("mr-t", {OUR_MAC!r})
            assert nl.link("mr-t") is None
            assert not nl.delete_bridge_if_ours("mr-t", {OUR_MAC!r})  # absent: nothing to do
        """)
    finally:
        host.sh("ip link del vethprobe 2>/dev/null; ip link del mr-t 2>/dev/null; "
                "ip netns del probe")


def test_run_refuses_an_admin_link_with_the_bridge_name(host):
    """The whole CLI path: the admin's veth survives a refused start and its rollback."""
    host.minirun("network", "create", "--subnet", "10.88.8.0/24", "t", check=True)
    try:
        # the network's bridge was deleted by hand, and an administrator took its name
        host.sh("ip link del mr-t && ip link add mr-t type veth peer name mr-t-peer")
        before = snapshot(host, "mr-t")
        res = host.minirun("run", "--rm", "--network", "t", R, "true")
        assert res.returncode == 125
        assert res.stderr.startswith("minirun: link mr-t exists and is not minirun's"), \
            res.stderr
        assert "(a veth)" in res.stderr
        assert snapshot(host, "mr-t") == before
        host.minirun("system", "prune")
        assert snapshot(host, "mr-t") == before
    finally:
        host.sh("ip link del mr-t 2>/dev/null || true")
        host.minirun("network", "rm", "t")


# -- stable MACs --------------------------------------------------------------------

SUBNET = "10.88.9"
GATEWAY = f"{SUBNET}.1"


def macs_of(host: Host) -> dict[str, str]:
    """name -> MAC of every link of the host."""
    out = {}
    for line in host.sh("ip -o link show").splitlines():
        m = re.match(r"\d+: ([^:@]+)[@:].*link/ether ([0-9a-f:]{17})", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


class Pinger:
    """`ping -i 0.1` from inside a container's namespace (the host's iputils ping, run with
    `ip netns exec`), its replies collected by icmp_seq."""

    def __init__(self, host: Host, netns: str, target: str):
        self.target = target
        self.proc = host.popen(["ip", "netns", "exec", netns, "ping", "-n", "-i", "0.1",
                                "-W", "1", target],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.seqs: list[int] = []
        self.buffer = b""
        os.set_blocking(self.proc.stdout.fileno(), False)

    def poll(self) -> list[int]:
        while not self.proc.stdout.closed:
            try:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            m = re.search(rb"bytes from .*icmp_seq=(\d+)", line)
            if m:
                self.seqs.append(int(m.group(1)))
        return self.seqs

    def last(self) -> int:
        return max(self.poll(), default=0)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.poll()  # what it printed so far
            self.proc.kill()
            self.proc.wait()
            self.proc.stdout.close()

    def worst_gap(self) -> float:
        """The longest run without a reply, in seconds (0.1 s per missing seq)."""
        seqs = sorted(set(self.poll()))
        return max((b - a - 1 for a, b in zip(seqs, seqs[1:])), default=0) * 0.1


def wait_for(cond, what: str, state=lambda: None, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out: {what}; now: {state()}"
        time.sleep(0.05)


def run_sleeper(host: Host, name: str, ip: str) -> None:
    host.minirun("run", "-d", "--name", name, "--network", "stable", "--ip", ip,
                 R, "sleep", "1000", check=True)


def test_gateway_and_reused_address_stay_reachable(host):
    """Removing the container whose port gave an unset bridge its MAC, then replacing a
    container by a new one on the same address: no ping stream stops for more than 1 s."""
    host.minirun("network", "create", "--subnet", f"{SUBNET}.0/24", "stable", check=True)
    pingers: list[Pinger] = []
    try:
        ips = {"c1": f"{SUBNET}.11", "c2": f"{SUBNET}.12", "c3": f"{SUBNET}.13"}
        for name, ip in ips.items():
            run_sleeper(host, name, ip)
        vethof = {n: host.record(n)
                  ["network"]["veth"] for n in ips}
        before = macs_of(host)
        bridge_mac = before["mr-stable"]
        # the victim: the port with the lowest MAC, the one an unset bridge MAC follows
        victim = min(ips, key=lambda n: before[vethof[n]])
        pinger, replaced = [n for n in ips if n != victim]
        old_mac = host.sh(f"ip -n {replaced} -o link show eth0")

        pingers = [Pinger(host, pinger, GATEWAY), Pinger(host, pinger, ips[replaced])]
        wait_for(lambda: all(len(p.poll()) >= 5 for p in pingers), "first replies")

        host.minirun("rm", "-f", victim, check=True)
        host.minirun("rm", "-f", replaced, check=True)
        run_sleeper(host, replaced + "b", ips[replaced])
        marks = [p.last() for p in pingers]
        # ten more replies after everything happened, each stream
        wait_for(lambda: all(p.last() >= m + 10 for p, m in zip(pingers, marks)),
                 f"replies after the changes (icmp_seq then: {marks})",
                 lambda: {p.target: p.last() for p in pingers})
        for p in pingers:
            p.stop()
        gaps = {p.target: p.worst_gap() for p in pingers}
        assert all(g <= 1.0 for g in gaps.values()), gaps

        after = macs_of(host)
        assert after["mr-stable"] == bridge_mac
        new_mac = host.sh(f"ip -n {replaced}b -o link show eth0")
        assert re.search("link/ether (\\S+)", new_mac).group(1) == \
            re.search("link/ether (\\S+)", old_mac).group(1) == "02:6d:0a:58:09:%02x" % (
                int(ips[replaced].rsplit(".", 1)[1]))
    finally:
        for p in pingers:
            p.stop()
        host.minirun("rm", "-f", "--all")
        host.minirun("network", "rm", "stable")
