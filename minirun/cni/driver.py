"""The bridge driver's steps for a namespace a CNI runtime made (not a process of ours).

The same BridgeDriver (bridge.py) that `minirun run` uses: prepare (lease, host
ports), then the attach steps -- net.bridge, net.veth (with CNI_IFNAME as the peer's
name), the address and default route inside, net.fw -- minus naming the namespace
(the runtime owns it, and gives it as a path). Undo is BridgeDriver.undo unchanged.
The network's bridge and rules come and go with its attachments (like minirun's
default network), so a network nobody uses leaves nothing on the host.
"""
from __future__ import annotations

import os

from .. import faults, journal
from ..network.bridge import BridgeDriver, forwards
from ..network.macs import veth_mac


class CniBridge(BridgeDriver):
    @property
    def lazy(self) -> bool:
        return True

    @property
    def alias(self) -> str:
        return f"minirun-cni network {self.net.name} (root {self.paths.root})"

    def attach_cni(self, c, netns_path: str, ifname: str, container_id: str) -> None:
        from ..network.netlink import Netlink
        att = c.network
        fw = self._firewall()
        nl = Netlink()
        try:
            faults.check("attach.bridge")
            with journal.step(c, "net.bridge", network=self.net.name, name=self.net.bridge,
                              mac=self.bridge_mac):
                with self.store.net_lock(self.net):
                    self._ensure_network(nl, fw)
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                faults.check("attach.veth")
                with journal.step(c, "net.veth", name=att.veth, mac=veth_mac(c.id),
                                  ifname=ifname, netns=netns_path):
                    nl.add_veth(att.veth, ifname, fd, att.netns, self.net.bridge,
                                veth_mac(c.id), att.mac,
                                alias=f"minirun-cni container {container_id[:64]}",
                                bridge_mac=self.bridge_mac)
                faults.check("attach.address")
                nl.configure_container(fd, att.netns, ifname, att.ip, att.prefixlen,
                                       att.gateway)
            finally:
                os.close(fd)
            fwds = forwards(att)
            faults.check("attach.ports")
            if fwds:
                with journal.step(c, "net.fw"):
                    fw.add_container(c.id, self.info, fwds)
                udp = [f.host_port for f in fwds if f.proto == "udp"]
                if udp:
                    from ..network.netlink import flush_udp_conntrack
                    flush_udp_conntrack(udp)
        finally:
            nl.close()
