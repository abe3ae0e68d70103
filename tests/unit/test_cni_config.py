"""minirun-cni: the configuration it reads, the result and errors it prints (no kernel)."""
import pytest

from minirun.cni import plugin
from minirun.cni.config import CniError, PortMapping, parse

BASE = {"cniVersion": "1.0.0", "name": "net1", "type": "minirun-cni", "subnet": "10.77.0.0/24"}


def test_defaults():
    c = parse(dict(BASE))
    assert (c.bridge, c.gateway, c.mode, c.firewall) == ("mr-net1", "10.77.0.1", "nat", "nftables")
    assert c.data_dir == "/var/lib/minirun-cni" and c.run_dir == "/run/minirun-cni"
    assert c.port_mappings == () and c.dns == {} and c.valid_attachments is None


def test_full():
    c = parse(dict(BASE, bridge="br-x", gateway="10.77.0.254", mode="routed",
                   firewall="iptables", dataDir="/tmp/d", dns={"nameservers": ["10.0.0.53"]},
                   runtimeConfig={"portMappings": [
                       {"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""},
                       {"hostPort": 5353, "containerPort": 53, "protocol": "UDP",
                        "hostIP": "127.0.0.1"},
                       {"hostPort": 9090, "containerPort": 90, "hostIP": "0.0.0.0"}]},
                   **{"cni.dev/valid-attachments": [{"containerID": "a", "ifname": "eth0"}]}))
    assert (c.bridge, c.gateway, c.mode, c.firewall) == ("br-x", "10.77.0.254", "routed",
                                                           "iptables")
    assert c.port_mappings == (PortMapping(8080, 80, "tcp", None),
                               PortMapping(5353, 53, "udp", "127.0.0.1"),
                               PortMapping(9090, 90, "tcp", None))
    assert c.valid_attachments == (("a", "eth0"),)


@pytest.mark.parametrize("change,code,words", [
    ({"cniVersion": "2.0.0"}, 1, "unsupported cniVersion"),
    ({"cniVersion": None}, 4, "cniVersion"),
    ({"name": "bad name"}, 4, "network name"),
    ({"subnet": None}, 4, "subnet is missing"),
    ({"subnet": "10.77.0.1/24"}, 4, "invalid subnet"),
    ({"subnet": "fd00::/64"}, 4, "IPv4"),
    ({"gateway": "10.78.0.1"}, 4, "not a host address"),
    ({"gateway": "10.77.0.255"}, 4, "not a host address"),
    ({"bridge": "a-much-too-long-bridge"}, 4, "bridge name"),
    ({"mode": "isolated"}, 4, "invalid mode"),
    ({"firewall": "pf"}, 4, "invalid firewall"),
    ({"dataDir": "relative"}, 4, "absolute"),
    ({"runtimeConfig": {"portMappings": [{"hostPort": 0, "containerPort": 80}]}}, 4, "1-65535"),
    ({"runtimeConfig": {"portMappings": [{"hostPort": 1, "containerPort": 80,
                                          "protocol": "sctp"}]}}, 4, "tcp or udp"),
    ({"runtimeConfig": {"portMappings": [{"hostPort": 1, "containerPort": 80,
                                          "hostIP": "::1"}]}}, 4, "IPv6"),
    ({"cni.dev/valid-attachments": [{"ifname": "eth0"}]}, 4, "containerID"),
])
def test_invalid(change, code, words):
    conf = dict(BASE)
    for k, v in change.items():
        if v is None:
            conf.pop(k, None)
        else:
            conf[k] = v
    with pytest.raises(CniError) as e:
        parse(conf)
    assert e.value.code == code and words in e.value.msg


def _result(version):
    return plugin.render_result(version, bridge="mr-net1", bridge_mac="06:00:00:00:00:01",
                                veth="vethabc", veth_mac="0a:00:00:00:00:02", ifname="eth0",
                                mac="02:00:0a:4d:00:02", sandbox="/run/netns/c1",
                                ip="10.77.0.2", prefixlen=24, gateway="10.77.0.1",
                                dns={"nameservers": ["10.0.0.53"]})


def test_result_1_0():
    assert _result("1.0.0") == {
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "mr-net1", "mac": "06:00:00:00:00:01"},
                       {"name": "vethabc", "mac": "0a:00:00:00:00:02"},
                       {"name": "eth0", "mac": "02:00:0a:4d:00:02", "sandbox": "/run/netns/c1"}],
        "ips": [{"address": "10.77.0.2/24", "gateway": "10.77.0.1", "interface": 2}],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.77.0.1"}],
        "dns": {"nameservers": ["10.0.0.53"]}}


def test_result_before_1_0_has_ip_version():
    assert _result("0.4.0")["ips"][0]["version"] == "4"


def test_error_json():
    assert CniError(7, "CNI_NETNS is not set").to_json("1.0.0") == {
        "cniVersion": "1.0.0", "code": 7, "msg": "CNI_NETNS is not set"}
    assert CniError(11, "again", "why").to_json("1.1.0")["details"] == "why"


def _run(env, stdin):
    return plugin.run(env, stdin)


def test_version():
    assert _run({"CNI_COMMAND": "VERSION"}, '{"cniVersion": "0.4.0"}') == (0, {
        "cniVersion": "0.4.0",
        "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]})
    assert _run({"CNI_COMMAND": "VERSION"}, "")[1]["cniVersion"] == "1.1.0"


@pytest.mark.parametrize("env,stdin,code", [
    ({"CNI_COMMAND": "BOGUS"}, "{}", 7),
    ({"CNI_COMMAND": "ADD"}, "not json", 6),
    ({"CNI_COMMAND": "ADD"}, "", 6),
    ({"CNI_COMMAND": "ADD", "CNI_NETNS": "/proc/self/ns/net", "CNI_IFNAME": "eth0"},
     None, 7),                                             # no CNI_CONTAINERID
    ({"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "x", "CNI_IFNAME": "eth0"}, None, 7),
    ({"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "x", "CNI_IFNAME": "bad/ifname"}, None, 7),
    ({"CNI_COMMAND": "GC"}, None, 1),                      # GC needs 1.1.0
])
def test_errors(env, stdin, code, tmp_path):
    if stdin is None:
        import json
        stdin = json.dumps(dict(BASE, dataDir=str(tmp_path / "d"), runDir=str(tmp_path / "r")))
    rc, out = _run(env, stdin)
    assert rc == 1 and out["code"] == code, out
    assert not (tmp_path / "d" / "containers").exists()
