"""`--explain` is exact: its output, replayed with bash in a second throwaway host, makes the
same kernel state minirun made; and `--explain=only` makes nothing at all.

    host 1 (the `host` fixture)            host 2 (a second throwaway Host)
    minirun --explain run -d --name web    bash <the printed commands>, where the
      -p 8080:80 ROOTFS httpd ...            container is a stand-in process
                                             (`unshare --net sleep infinity`) whose
                                             PID replaces the recorded one

The two are compared: `ip -j -d link`, `ip -j -4 addr`, `ip -j -4 route` on the host and
inside the container's namespace, `nft -j list ruleset`, `iptables-save`, and the
sysctls minirun sets -- ignoring only handles, counters, ifindexes, link-netnsids and
timers (MACs are kept: minirun derives and sets them). The replayed published port must
answer, from busybox httpd run in the stand-in's namespace. Then `rm` the same way:
its commands, replayed in host 2, bring it back to its baseline.

Commands of the cgroup layer (`mkdir /sys/fs/cgroup/...`) are not replayed: cgroups
are not namespaced, the second host would make them on the real machine; their
exactness is not what this file checks. Nor are those of a named network's DNS server
(`aardvark-dns`, its config files in the state root, its signals): they name the first
host's files and process, which the second host shares the file system with.
"""
import json
import re
import time

import pytest

from harness import ROOTFS, Host

R = str(ROOTFS)
BACKENDS = ["nftables", "iptables"]
HTTPD = ["sh", "-c", "echo web > /var/www/index.html && exec httpd -f -p 80 -h /var/www"]


# -- the explain output as commands ------------------------------------------------

def commands(text: str) -> list[str]:
    """The shell commands of --explain output, comments dropped, here-documents whole."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.startswith("#"):
            continue
        if line.endswith("<<'EOF'"):
            body = [line]
            while lines[i] != "EOF":
                body.append(lines[i])
                i += 1
            i += 1
            line = "\n".join(body + ["EOF"])
        out.append(line)
    return out


def network_commands(text: str, pid: int, stand_in: int) -> str:
    """The commands to replay: the cgroup layer's left out (see above), the container's
    PID replaced by the stand-in's."""
    cmds = [c for c in commands(text) if "/sys/fs/cgroup" not in c and "aardvark" not in c]
    script = "\n".join(cmds) + "\n"
    return re.sub(rf"(?<![0-9]){pid}(?![0-9])", str(stand_in), script)


# -- kernel state, normalised --------------------------------------------------------

IGNORED = {"ifindex", "link_index", "link_netnsid", "handle", "stats", "stats64",
           "preferred_life_time", "valid_life_time"}


def _clean(obj):
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in IGNORED or "timer" in k:
                continue
            if k == "counter" and isinstance(v, dict):
                v = {"packets": 0, "bytes": 0}
            out[k] = _clean(v)
        return out
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def _json(host, cmd: str):
    text = host.sh(cmd).strip()
    return _clean(json.loads(text)) if text else None


def _by_name(links):
    return sorted(links or [], key=lambda l: l.get("ifname", ""))


def snapshot(host, netns: str | None, bridge: str | None) -> dict:
    snap = {
        "link": _by_name(_json(host, "ip -j -d link show")),
        "addr": _by_name(_json(host, "ip -j -4 addr show")),
        "route": _json(host, "ip -j -4 route show table all"),
        "nft": _json(host, "nft -j list ruleset"),
        "iptables": [re.sub(r"\[\d+:\d+\]", "[0:0]", l)
                     for l in host.sh("iptables-save 2>/dev/null || true").splitlines()
                     if not l.startswith("#")],
        "ip_forward": host.sh("sysctl -n net.ipv4.ip_forward").strip(),
    }
    if bridge:
        snap["route_localnet"] = host.sh(
            f"sysctl -n net.ipv4.conf.{bridge}.route_localnet 2>/dev/null || true").strip()
    if netns:
        snap["ns_link"] = _by_name(_json(host, f"ip -n {netns} -j -d link show"))
        snap["ns_addr"] = _by_name(_json(host, f"ip -n {netns} -j -4 addr show"))
        snap["ns_route"] = _json(host, f"ip -n {netns} -j -4 route show table all")
        snap["ns_ping_group_range"] = host.sh(
            f"ip netns exec {netns} sysctl -n net.ipv4.ping_group_range").split()
    return snap


def same_state(h1, h2, netns, bridge, timeout=10.0):
    """Wait until both hosts show the same state (link states settle asynchronously);
    assert with the difference otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        a, b = snapshot(h1, netns, bridge), snapshot(h2, netns, bridge)
        if a == b:
            return a
        if time.monotonic() > deadline:
            diff = {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
            raise AssertionError(f"minirun and the replay differ: {json.dumps(diff, indent=1)}")
        time.sleep(0.05)


def wait_for(host, probe: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        res = host.run(probe)
        if res.returncode == 0:
            return res.stdout
        if time.monotonic() > deadline:
            raise AssertionError(f"{probe}: {res.stdout}{res.stderr}")
        time.sleep(0.02)


def explain(host, *args) -> str:
    res = host.minirun("--explain", *args, check=True)
    assert not re.search(r"^minirun: ", res.stderr, re.M), res.stderr
    return res.stderr


def replay(host, script: str) -> None:
    res = host.run(["bash", "-e", "-c", script])
    assert res.returncode == 0, f"replay failed:\n{script}\n{res.stdout}{res.stderr}"


def routed_available(host) -> bool:
    return "--routed" in host.minirun("network", "create", "--help").stdout


# -- the replays -----------------------------------------------------------------------

def _replay_life(host, tmp_path, backend: str, network: str | None,
                 create: list[str] | None) -> None:
    fw = ["--firewall", backend]
    replica = Host("replay")
    stand_in = None
    server = None
    try:
        baseline2 = replica.inventory()
        first = ""
        if create:
            first = explain(host, *fw, "network", "create", *create)
        net = ["--network", network] if network else []
        out = explain(host, *fw, "run", "-d", "--name", "web", "-p", "8080:80", *net, R, *HTTPD)
        pid = host.record("web")
        pid = (pid[0] if isinstance(pid, list) else pid)["pid"]
        bridge = re.search(r"master (\S+) up", out).group(1)
        ip = re.search(r"addr add (\S+)/\d+ dev eth0", out).group(1)
        # the container answers, through the published port too
        assert "web" in wait_for(host, f"curl -sf -m2 http://{ip}:80/")
        assert "web" in wait_for(host, "curl -sf -m2 http://127.0.0.1:8080/")

        # the stand-in: a process in a network namespace of its own
        stand_in = replica.popen(["unshare", "--net", "--", "sleep", "infinity"])
        wait_for(replica, f"test \"$(readlink /proc/{stand_in.pid}/ns/net)\" != "
                          f"\"$(readlink /proc/self/ns/net)\"")
        if create:
            replay(replica, network_commands(first, pid, stand_in.pid))
        replay(replica, network_commands(out, pid, stand_in.pid))
        state = same_state(host, replica, "web", bridge)
        # what was compared is what matters: the bridge, the cable, the address, the rules
        names = {l["ifname"] for l in state["link"]}
        assert bridge in names and any(n.startswith("veth") for n in names)
        assert any(a.get("local") == ip for l in state["ns_addr"] for a in l["addr_info"])
        assert state["ns_route"] and state["ip_forward"] == "1"
        assert state["route_localnet"] == "1"
        assert state["ns_ping_group_range"] == ["0", "2147483647"]
        rules = json.dumps(state["nft"]) + "\n".join(state["iptables"])
        assert "8080" in rules and "masquerade" in rules.lower()

        www = tmp_path / "www"
        www.mkdir()
        (www / "index.html").write_text("replica\n")
        server = replica.popen(["ip", "netns", "exec", "web", "busybox", "httpd", "-f",
                                "-p", "80", "-h", str(www)])
        assert "replica" in wait_for(replica, f"curl -sf -m2 http://{ip}:80/")
        assert "replica" in wait_for(replica, "curl -sf -m2 http://127.0.0.1:8080/")
        server.kill()
        server.wait()
        server = None

        # rm: its commands (the monitor's teardown among them) undo the replica too
        gone = explain(host, "rm", "-f", "web")
        assert f"kill -KILL {pid}" in gone
        if create:
            gone += explain(host, *fw, "network", "rm", network)
        script = network_commands(gone, pid, stand_in.pid)
        res = replica.run(["bash", "-c", script])
        # the veth is deleted before the namespace's name: the replay runs without an error
        errors = [l for l in res.stderr.splitlines() if l.strip()]
        assert not errors, res.stderr
        stand_in.wait(timeout=10)
        stand_in = None
        deadline = time.monotonic() + 10
        while replica.inventory() != baseline2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert replica.inventory() == baseline2
        same_state(host, replica, None, None)
    finally:
        for p in (server, stand_in):
            if p is not None:
                p.kill()
                p.wait()
        replica.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_replay_nat_network(host, tmp_path, backend):
    """The default network (NAT), made by the first container: bridge, rules, veth, port."""
    _replay_life(host, tmp_path, backend, None, None)


@pytest.mark.parametrize("backend", BACKENDS)
def test_replay_routed_network(host, tmp_path, backend):
    """A routed network made by `network create --routed`, then the container on it."""
    if not routed_available(host):
        pytest.skip("routed networks (`network create --routed`) do not exist yet")
    _replay_life(host, tmp_path, backend, "lesson",
                 ["--routed", "--subnet", "192.0.2.0/24", "lesson"])


# -- --explain=only --------------------------------------------------------------------

def _files(host) -> list[str]:
    return sorted(str(p) for base in (host.root, host.runroot) if base.exists()
                  for p in base.rglob("*"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_explain_only_creates_nothing(host, backend):
    fw = ["--firewall", backend]
    # one real container first: the plan must peek at the allocator, not reserve
    host.minirun(*fw, "run", "-d", "--name", "first", R, "sleep", "60", check=True)
    before, files = host.inventory(), _files(host)
    res = host.minirun("--explain=only", *fw, "run", "-d", "--name", "web", "-p", "8080:80",
                       R, *HTTPD)
    assert res.returncode == 0, res.stderr
    assert "ip netns attach web $PID" in res.stderr
    assert "addr add 10.99.0.3/16 dev eth0" in res.stderr  # .2 is first's
    assert "create element ip minirun ports_tcp" in res.stderr or "--dport 8080" in res.stderr
    assert host.inventory() == before
    assert _files(host) == files
    assert " web" not in host.minirun("ps", "-a").stdout
    # the same name is still free, the same port too
    host.minirun(*fw, "run", "-d", "--name", "web", "-p", "8080:80", R, *HTTPD, check=True)
    host.minirun("rm", "-f", "web", "first", check=True)


def test_explain_only_network_create(host):
    before, files = host.inventory(), _files(host)
    res = host.minirun("--explain=only", "network", "create", "--subnet", "192.0.2.0/24",
                       "lesson")
    assert res.returncode == 0, res.stderr
    assert host.inventory() == before and _files(host) == files
    assert "lesson" not in host.minirun("network", "ls").stdout


def test_explain_only_refuses_other_commands(host):
    res = host.minirun("--explain=only", "rm", "web")
    assert res.returncode == 125 and res.stderr.startswith("minirun: --explain=only")


def test_monitor_teardown_in_explain_log(host):
    """A detached container whose command exits by itself: its monitor's teardown is in
    explain.log, with the `run --explain` before it; `logs --explain` shows both."""
    out = explain(host, "run", "-d", "--name", "brief", R, "sleep", "0.3")
    deadline = time.monotonic() + 15
    while "Exited" not in host.minirun("ps", "-a").stdout and time.monotonic() < deadline:
        time.sleep(0.05)
    log = ""
    while "ip link del group" not in log and time.monotonic() < deadline:
        log = host.minirun("logs", "--explain", "brief", check=True).stdout
        time.sleep(0.05)
    assert "minirun run: container brief" in log
    for cmd in commands(out):
        assert cmd in log
    assert "its monitor tears down" in log
    assert "ip netns delete brief" in log and "ip link del group" in log
    assert log.index("ip netns attach brief") < log.index("ip netns delete brief")
    host.minirun("rm", "brief", check=True)
