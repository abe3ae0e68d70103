"""minirun-cni when ADD fails or is killed: a failed ADD leaves nothing; after an ADD
killed at any crash point, the DEL a runtime sends (CNI spec: DEL after a failed
ADD) leaves nothing either. The points are listed from one normal ADD
(MINIRUN_TRACE_POINTS), not guessed."""
import json

import pytest

from test_cni import PLUGIN, cni, conf

STEPS = ("prepare.address", "prepare.ports", "attach.bridge", "attach.firewall-network",
         "attach.veth", "attach.address", "attach.ports")


def _cfg(host):
    return conf(host, runtimeConfig={"portMappings": [
        {"hostPort": 18081, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 18082, "containerPort": 53, "protocol": "udp"}]})


def _run(host, command, cfg, extra_env):
    env = [f"CNI_COMMAND={command}", "CNI_CONTAINERID=crash", "CNI_NETNS=/run/netns/c1",
           "CNI_IFNAME=eth0", "CNI_PATH=/nonexistent"] + extra_env
    return host.run(["env"] + env + PLUGIN, input=json.dumps(cfg))


@pytest.mark.parametrize("step", STEPS)
def test_failed_add_leaves_nothing(host, step):
    host.sh("ip netns add c1")
    try:
        res = _run(host, "ADD", _cfg(host), [f"MINIRUN_FAULT={step}"])
        assert res.returncode != 0
        out = json.loads(res.stdout)
        assert out["code"] == 100 and "injected fault" in out["msg"], out
        assert "eth0" not in host.sh("ip -n c1 link")
    finally:
        host.run("ip netns del c1")


def test_killed_add_then_del_leaves_nothing(host, tmp_path):
    trace = tmp_path / "points"
    host.sh("ip netns add c1")
    try:
        cfg = _cfg(host)
        assert _run(host, "ADD", cfg, [f"MINIRUN_TRACE_POINTS={trace}"]).returncode == 0
        assert cni(host, "DEL", cfg, container="crash")[0] == 0
        points = list(dict.fromkeys(trace.read_text().split()))
        assert any(p.startswith("intent:net.veth") for p in points), points
        baseline = host.sh("ip -n c1 link")
        for point in points:
            res = _run(host, "ADD", cfg, [f"MINIRUN_KILL_AT={point}"])
            # the network's record is written by the first ADD only
            if not point.startswith("write:networks/"):
                assert res.returncode in (-9, 137), (point, res)
            rc, out, err = cni(host, "DEL", cfg, container="crash")
            assert (rc, out) == (0, None), (point, out, err)
            assert host.sh("ip -n c1 link") == baseline, point
            assert host.run("ip link show mrcni0").returncode != 0, point
    finally:
        host.run("ip netns del c1")
