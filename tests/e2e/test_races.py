"""Two commands at the worst moment of each other, made exact with MINIRUN_PAUSE_AT (the
first command stops at a named point until the test lets it go). Each failed before."""
import time

from harness import MINIRUN, ROOTFS

R = str(ROOTFS)


def paused(host, point, args):
    """Start `minirun ARGS`, stopped at `point`; returns (process, the flag to remove)."""
    flag = host.dir / "pause"
    flag.unlink(missing_ok=True)
    p = host.popen(["env", f"MINIRUN_PAUSE_AT={point}={flag}"] + MINIRUN + args,
                   stdout=-1, stderr=-1, text=True)
    deadline = time.monotonic() + 30
    while not flag.exists():
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline, f"never reached {point}"
        time.sleep(0.01)
    return p, flag


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_network_rm_while_a_run_starts_on_it(host):
    """`network rm` in the window between a run finding the network and reserving its
    address: the run is refused cleanly, and nothing of the network comes back."""
    baseline = host.inventory()
    host.minirun("network", "create", "--subnet", "192.168.61.0/24", "lan", check=True)
    p, flag = paused(host, "prepare", ["run", "--rm", "--network", "lan", R, "true"])
    host.minirun("network", "rm", "lan", check=True)
    flag.unlink()
    out, err = p.communicate(timeout=60)
    assert p.returncode == 125 and "network lan was removed meanwhile" in err, err
    host.minirun("system", "prune", check=True)
    assert host.inventory() == baseline
    assert "mr-lan" not in host.sh("ip -o link")


def test_rm_force_during_a_start(host):
    """`rm -f` while the start is about to name the netns: the start is rolled back, the
    name's /run/netns file is not left behind, and the name is free again."""
    baseline = host.inventory()
    p, flag = paused(host, "intent:net.netns", ["run", "-d", "--name", "web", R, "sleep", "100"])
    pid = host.record("web")["pid"]
    rm = host.popen(MINIRUN + ["rm", "-f", "web"], stdout=-1, stderr=-1, text=True)
    deadline = time.monotonic() + 30
    while _alive(pid):  # rm killed PID 1 (it stays a zombie of the paused start)
        assert time.monotonic() < deadline
        time.sleep(0.01)
    flag.unlink()  # the start goes on with a dead PID 1, and must roll back
    out, err = p.communicate(timeout=60)
    rm_out, rm_err = rm.communicate(timeout=60)
    assert p.returncode == 125, err
    assert rm.returncode == 0, rm_err
    host.minirun("system", "prune", check=True)
    assert host.inventory() == baseline
    host.minirun("run", "--rm", "--name", "web", R, "true", check=True)


def test_tiny_subnet_is_a_clean_error(host):
    res = host.minirun("network", "create", "--subnet", "192.0.2.0/32", "n3")
    assert res.returncode == 125 and res.stderr.startswith("minirun: subnet 192.0.2.0/32 is too")
    res = host.minirun("network", "create", "--bridge", "..", "n1")
    assert res.returncode == 125 and "bridge name" in res.stderr
    assert host.minirun("network", "inspect", "n1").returncode == 1


def test_one_firewall_backend_per_network(host):
    host.minirun("run", "-d", "--name", "a", R, "sleep", "100", check=True)
    res = host.minirun("--firewall", "iptables", "run", "--rm", R, "true")
    assert res.returncode == 125 and "--firewall nftables" in res.stderr, res.stderr
    host.minirun("rm", "-f", "a", check=True)
    host.minirun("--firewall", "iptables", "run", "--rm", R, "true", check=True)
