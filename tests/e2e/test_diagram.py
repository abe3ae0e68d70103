"""`minirun network diagram` draws live kernel state: hand-made links show up too."""
import json
import subprocess

from harness import ROOTFS

R = str(ROOTFS)


def test_hand_made_links_and_containers_appear(host, tmp_path):
    host.sh("""
        ip netns add red && ip netns add blue
        ip link add veth-red type veth peer name veth-blue
        ip link set veth-red netns red && ip link set veth-blue netns blue
        ip -n red addr add 192.168.15.1/24 dev veth-red
        ip link add v-net-9 type bridge && ip addr add 203.0.113.5/24 dev v-net-9
    """)
    try:
        host.minirun("network", "create", "--subnet", "192.0.2.0/24", "--routed", "lesson",
                     check=True)
        host.minirun("run", "-d", "--name", "web", "--network", "lesson", "-p", "8080:80", R,
                     "sleep", "1000", check=True)
        ip = host.record("web")["network"]["ip"]
        text = host.minirun("network", "diagram", check=True).stdout
        # the hand-made cable, both ends, each in its namespace
        assert "veth-red  veth  192.168.15.1/24" in text
        assert "cable to veth-blue in netns blue" in text
        assert "cable to veth-red in netns red" in text
        # the hand-made bridge with its address and MAC
        mac = json.loads(host.sh("ip -j link show v-net-9"))[0]["address"]
        assert f"v-net-9  bridge  203.0.113.5/24  mac {mac}" in text
        # the container: its address, its cable, its routes, its published port, the mode
        assert "netns web  (container web)" in text and f"eth0  veth  {ip}/24" in text
        assert "default via 192.0.2.1 dev eth0" in text
        assert f"0.0.0.0:8080 -> {ip}:80/tcp" in text
        assert "[minirun network lesson, routed]" in text
        # one network only: the hand-made links are not part of it
        one = host.minirun("network", "diagram", "lesson", check=True).stdout
        assert "netns web" in one and "veth-red" not in one and "v-net-9" not in one
        # Graphviz: the dot text is valid for `dot -Tsvg`, and minirun makes the picture
        dot = host.minirun("network", "diagram", "--format", "dot", check=True).stdout
        assert '"red/veth-red" -- "blue/veth-blue"' in dot or \
            '"blue/veth-blue" -- "red/veth-red"' in dot
        res = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True)
        assert res.returncode == 0 and "<svg" in res.stdout, res.stderr
        out = tmp_path / "net.svg"
        host.minirun("network", "diagram", "--format", "svg", "-o", str(out), check=True)
        svg = out.read_text().replace("&#45;", "-")  # dot escapes hyphens
        assert "<svg" in svg and "veth-blue" in svg
    finally:
        host.minirun("rm", "-f", "web")
        host.minirun("network", "rm", "lesson")
        host.sh("ip netns del red; ip netns del blue; ip link del v-net-9")
