"""Failure paths: every setup step failing on purpose, teardown twice / in parallel / after
the kernel objects vanished. Nothing may be left, whatever happens."""
import subprocess

import pytest

from harness import MINIRUN, ROOTFS
from minirun.faults import STEPS

R = str(ROOTFS)


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("detach", [False, True])
def test_each_setup_step_failing_leaves_nothing(host, step, detach):
    args = ["run", "--name", "f", "-p", "8080:80", "-p", "5353:53/udp"]
    if detach:
        args.append("-d")
    res = host.run(["env", f"MINIRUN_FAULT={step}"] + MINIRUN + args + [R, "sleep", "100"])
    assert res.returncode == 125, res.stderr
    assert res.stderr.strip() == f"minirun: injected fault at {step}"
    assert host.minirun("inspect", "f").returncode == 1  # as Docker's
    # the name, the address and the ports are free again at once
    host.minirun("run", "--rm", "--name", "f", "-p", "8080:80", R, "true", check=True)


def test_teardown_in_parallel_and_twice(host):
    host.minirun("run", "-d", "--name", "p", "-p", "8080:80", R, "sleep", "1000", check=True)
    procs = [host.popen(MINIRUN + ["rm", "-f", "p"], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True) for _ in range(10)]
    results = [(p.wait(60), p.stdout.read(), p.stderr.read()) for p in procs]
    assert sum(1 for code, out, _ in results if code == 0 and out.strip() == "p") >= 1
    for code, out, err in results:
        assert code == 0 or "no such container" in err, err
    assert host.minirun("rm", "-f", "p").returncode == 125  # twice: a clean "no such"


def test_teardown_after_the_kernel_objects_vanished(host):
    host.minirun("run", "-d", "--name", "v", "-p", "8080:80", R, "sleep", "1000", check=True)
    rec = host.record("v")
    host.sh(f"ip link del {rec['network']['veth']}; ip netns del v; "
            "nft delete table ip minirun; ip link del minirun0")
    host.minirun("rm", "-f", "v", check=True)


def test_firewall_teardown_failure_is_reported_and_retried(host):
    host.minirun("run", "-d", "--name", "w", "-p", "8080:80", R, "sleep", "1000", check=True)
    # An admin rule in the user chain keeps minirun's table alive: not a failure.
    host.sh("nft add rule ip minirun user ip saddr 192.0.2.7 drop")
    host.minirun("rm", "-f", "w", check=True)
    assert "192.0.2.7" in host.sh("nft list chain ip minirun user")
    host.sh("nft delete table ip minirun")
