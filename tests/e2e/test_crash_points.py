"""SIGKILL inside every atomic write and around every journal step, deterministically.

A normal start is run once with MINIRUN_TRACE_POINTS, which lists every crash
point it passes (faults.py); then, for each point, a start is SIGKILLed exactly
there. After `system prune` and `rm -f --all`, the throwaway host must hold
exactly what it held before: no link, rule, netns, mount, lease, reservation,
record, temporary file or process. The random-timing test in test_network.py
covers the points between these."""

import pytest

from harness import MINIRUN, ROOTFS

R = str(ROOTFS)
STARTS = {
    "detached": ["run", "-d", "--name", "k", "-p", "8080:80", "-p", "5353:53/udp", R,
                 "sleep", "1000"],
    "foreground": ["run", "--rm", "--name", "k", "-p", "8080:80", R, "true"],
    "none": ["run", "-d", "--name", "k", "--network", "none", R, "sleep", "1000"],
}


def points(host, args) -> list[str]:
    trace = host.dir / "trace"
    trace.unlink(missing_ok=True)
    res = host.run(["env", f"MINIRUN_TRACE_POINTS={trace}"] + MINIRUN + args)
    assert res.returncode == 0, res.stderr
    host.minirun("rm", "-f", "k")
    seen = list(dict.fromkeys(trace.read_text().split()))
    assert any(p.startswith("intent:") for p in seen) and any(p.startswith("write:") for p in seen)
    return seen


@pytest.mark.parametrize("mode", sorted(STARTS))
def test_sigkill_at_every_point_leaves_nothing(host, mode):
    baseline = host.inventory()
    args = STARTS[mode]
    for point in points(host, args):
        host.run(["env", f"MINIRUN_KILL_AT={point}"] + MINIRUN + args, timeout=60)
        res = host.minirun("system", "prune")
        assert res.returncode == 0, (point, res.stderr)
        # whatever survived (a container that got to run) is a normal container now
        res = host.minirun("rm", "-f", "--all")
        assert res.returncode == 0, (point, res.stderr)
        after = host.inventory()
        assert after == baseline, f"killed at {point}: left {after}"
        # and the name, the address and the ports are free again
        res = host.run(MINIRUN + args)
        assert res.returncode == 0, (point, res.stderr)
        host.minirun("rm", "-f", "--all", check=True)


def test_a_reservation_killed_mid_write_blocks_nothing(host):
    """An older minirun killed between creating a host-port reservation and writing it left
    an empty file: the port is still usable, and prune removes the file (found by the
    random SIGKILL test once in 50 runs)."""
    ports = host.root / "ports"
    ports.mkdir(parents=True)
    (ports / "tcp-9300").write_text("")
    host.minirun("run", "--rm", "-p", "9300:80", R, "true", check=True)
    (ports / "tcp-9301").write_text("")
    host.minirun("system", "prune", check=True)
    assert not (ports / "tcp-9301").exists()
