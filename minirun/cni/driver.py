"""The bridge driver's steps for a namespace a CNI runtime made (not a process of ours).

The same BridgeDriver (bridge.py) that `minirun run` uses: prepare (lease, host
ports), then the attach steps -- net.bridge, net.veth (with CNI_IFNAME as the peer's
name), the address and default route inside, net.fw -- minus naming the namespace
(the runtime owns it, and gives it as a path). Undo is BridgeDriver.undo unchanged.
The network's bridge and rules come and go with its attachments (like minirun's
default network), so a network nobody uses leaves nothing on the host.
"""
from __future__ import annotations

from ..network.bridge import BridgeDriver


class CniBridge(BridgeDriver):
    @property
    def lazy(self) -> bool:
        return True

    @property
    def alias(self) -> str:
        return f"minirun-cni network {self.net.name} (root {self.paths.root})"

    def attach_cni(self, c, netns_path: str, ifname: str, container_id: str) -> None:
        self.attach_steps(c, netns_path, ifname, f"minirun-cni container {container_id[:64]}",
                          ifname=ifname, netns=netns_path)
