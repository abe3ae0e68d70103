"""`minirun-cni`: minirun's bridge network driven by a CNI runtime (podman, containerd, ...).

The CNI protocol (SPEC.md of containernetworking/cni, 1.0.0, plus GC and STATUS of
1.1.0): the command and the container are in the environment (CNI_COMMAND,
CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH), the network
configuration on stdin; the result, or the spec's error object, on stdout.

    ADD     attach the namespace at CNI_NETNS to the network: the same steps as
            `minirun run` on a bridge network (bridge.py), by the same code:
            net.lease, net.port, net.bridge, net.veth, net.fw -- each journaled,
            with its ownership token, in a record of the plugin's own state root
            (dataDir); the peer in the namespace is named CNI_IFNAME
    DEL     undo what the record says (never judged by names: the veth's MAC, the
            firewall entries' owner tag, the leases' owner); idempotent, and works
            after the namespace is gone (the kernel took the veth with it)
    CHECK   the attachment is as ADD left it
    GC      DEL every attachment of the network not in cni.dev/valid-attachments
    STATUS  the firewall backend is usable
    VERSION the versions spoken

An attachment is (network name, CNI_CONTAINERID, CNI_IFNAME); its record's id is the
sha256 of that, so the veth's name and MAC are derived from it as minirun's are from
a container id. The network's bridge and rules come with its first attachment and
go with its last.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from .config import (CniError, E_CHECK_FAILED, E_DECODE, E_INVALID_CONFIG, E_INVALID_ENV,
                     E_IO, E_NOT_AVAILABLE, E_CONFLICT, E_PLUGIN, E_TRY_AGAIN,
                     E_UNKNOWN_CONTAINER, NetConf, SUPPORTED_VERSIONS, parse)

LATEST = "1.1.0"
RECORD = "cni.json"   # next to state.json: the CNI identity of the attachment


def _vtuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def render_result(version: str, *, bridge: str, bridge_mac: str, veth: str, veth_mac: str,
                  ifname: str, mac: str, sandbox: str, ip: str, prefixlen: int, gateway: str,
                  dns: dict) -> dict:
    """The spec's ADD result: interfaces (the bridge, the host end, the container's end
    with its sandbox), the address on the container's interface (index 2), the default
    route, dns."""
    address = {"address": f"{ip}/{prefixlen}", "gateway": gateway, "interface": 2}
    if _vtuple(version) < (1, 0, 0):
        address["version"] = "4"
    return {"cniVersion": version,
            "interfaces": [{"name": bridge, "mac": bridge_mac},
                           {"name": veth, "mac": veth_mac},
                           {"name": ifname, "mac": mac, "sandbox": sandbox}],
            "ips": [address],
            "routes": [{"dst": "0.0.0.0/0", "gw": gateway}],
            "dns": dict(dns)}


def attachment_id(network: str, container_id: str, ifname: str) -> str:
    from ..state import sha256_hex
    return sha256_hex(f"{network}\0{container_id}\0{ifname}")


class Env:
    def __init__(self, environ):
        self.command = environ.get("CNI_COMMAND", "")
        self.container_id = environ.get("CNI_CONTAINERID", "")
        self.netns = environ.get("CNI_NETNS", "")
        self.ifname = environ.get("CNI_IFNAME", "")
        self.args = environ.get("CNI_ARGS", "")
        self.path = environ.get("CNI_PATH", "")

    def require(self, *names: str) -> None:
        for n in names:
            if not getattr(self, n):
                raise CniError(E_INVALID_ENV, f"CNI_{n.replace('_', '').upper()} is not set"
                               if n != "container_id" else "CNI_CONTAINERID is not set")
        if self.ifname:
            from .config import IFNAME_RE
            if not IFNAME_RE.match(self.ifname):
                raise CniError(E_INVALID_ENV, f"invalid CNI_IFNAME {self.ifname!r}")
        if self.container_id and (len(self.container_id) > 1024
                                  or any(ch in self.container_id for ch in "\0\n/")):
            raise CniError(E_INVALID_ENV, f"invalid CNI_CONTAINERID {self.container_id!r}")


class Plugin:
    def __init__(self, conf: NetConf):
        from ..network.networks import Network
        from ..state import Paths
        from .driver import CniBridge
        self.conf = conf
        self.paths = Paths(Path(conf.data_dir), Path(conf.run_dir))
        self.net = Network(conf.name, conf.subnet, conf.gateway, conf.bridge, mode=conf.mode)
        self.driver = CniBridge(self.paths, self.net, conf.firewall)

    def sweep(self) -> None:
        """The temporary files of atomic writes whose writer was killed (a runtime's
        timeout SIGKILLs a plugin as readily as anything else)."""
        from .. import fsutil
        fsutil.sweep_temp(self.paths.root)
        fsutil.sweep_temp(self.paths.runroot)

    # -- the network's record ------------------------------------------------------
    def sync_network(self) -> None:
        """Write the network's record from the configuration; a configuration that
        changed while attachments exist is refused (their rules use the old one)."""
        from .. import fsutil
        path = self.driver.store.record_path(self.net.name)
        want = {k: v for k, v in self.net._asdict().items() if k != "created"}
        have = fsutil.read_json(path)
        if have is not None and {k: have.get(k) for k in want} == want:
            return
        if have is not None and self.driver.store.ipam(self.net).leases():
            raise CniError(E_INVALID_CONFIG, f"network {self.net.name} is in use with "
                           f"bridge {have.get('bridge')}, subnet {have.get('subnet')}, gateway "
                           f"{have.get('gateway')}, mode {have.get('mode')}: the configuration "
                           "may change only when it has no attachments")
        path.parent.mkdir(parents=True, exist_ok=True)
        fsutil.write_json(path, dict(want, created=time.time()))

    def _lock(self, aid: str):
        from .. import fsutil
        return fsutil.locked(self.paths.runroot / f"cni-{aid[:16]}.lock")

    def _load(self, aid: str):
        from ..state import load
        return load(self.paths, aid)

    # -- ADD -------------------------------------------------------------------------
    def add(self, env: Env) -> dict:
        from types import SimpleNamespace

        from .. import fsutil
        from ..procs import proc_start_time
        from ..record import Config, Container, Port
        from ..state import save
        if not os.path.exists(env.netns):
            raise CniError(E_INVALID_ENV, f"CNI_NETNS {env.netns} does not exist")
        self.sync_network()
        aid = attachment_id(self.net.name, env.container_id, env.ifname)
        self.paths.runroot.mkdir(parents=True, exist_ok=True)
        with self._lock(aid):
            old = self._load(aid)
            if old is not None and old.state == "created":
                raise CniError(E_PLUGIN, f"container {env.container_id} is already attached "
                               f"to network {self.net.name} as {env.ifname}: DEL it first")
            if old is not None:  # an ADD that did not finish: undo it first
                self._undo(old)
            ports = tuple(Port(m.host_ip, m.host_port, m.container_port, m.protocol)
                          for m in self.conf.port_mappings)
            self.driver.preflight(SimpleNamespace(name=None), list(ports))
            cfg = Config(rootfs="", command=(), hostname="", env={}, network_mode="cni",
                         ports=ports)
            c = Container(self.paths, aid, "cni-" + aid[:12], cfg, created=time.time(),
                          owner_pid=os.getpid(), owner_start=proc_start_time(os.getpid()))
            c.dir.mkdir(parents=True, exist_ok=True)
            fsutil.write_json(c.dir / RECORD, {
                "network": self.net.name, "containerID": env.container_id,
                "ifname": env.ifname, "netns": env.netns, "cniVersion": self.conf.cni_version})
            save(c)
            try:
                self.driver.prepare(c)
                self.driver.attach_cni(c, env.netns, env.ifname, env.container_id)
                c.state = "created"
                save(c)
            except BaseException:
                self._undo(c)
                raise
        return self.result(c, env)

    def result(self, c, env: Env) -> dict:
        from ..network.macs import veth_mac
        att = c.network
        return render_result(self.conf.cni_version, bridge=self.net.bridge,
                             bridge_mac=self.driver.bridge_mac, veth=att.veth,
                             veth_mac=veth_mac(c.id), ifname=env.ifname, mac=att.mac,
                             sandbox=env.netns, ip=att.ip, prefixlen=att.prefixlen,
                             gateway=att.gateway, dns=self.conf.dns)

    # -- DEL -------------------------------------------------------------------------
    def _undo(self, c) -> None:
        """Undo the record's steps, newest first; the record goes only when all did."""
        failures = self.driver.undo(c, list(reversed(c.journal)))
        if failures:
            raise CniError(E_TRY_AGAIN, f"could not detach {c.id[:12]} from network "
                           f"{self.net.name}; DEL again",
                           "; ".join(f"{f.op} {f.obj}: {f.reason}" for f in failures))
        shutil.rmtree(c.dir, ignore_errors=True)

    def delete(self, env: Env) -> None:
        aid = attachment_id(self.net.name, env.container_id, env.ifname)
        if not self.paths.containers.joinpath(aid).exists():
            return  # nothing of ours: DEL is idempotent
        self.paths.runroot.mkdir(parents=True, exist_ok=True)
        with self._lock(aid):
            c = self._load(aid)
            if c is None:  # a directory without a readable record: nothing was made
                shutil.rmtree(self.paths.containers / aid, ignore_errors=True)
                return
            self._undo(c)

    # -- CHECK -----------------------------------------------------------------------
    def check(self, env: Env) -> None:
        from ..network.macs import normalize, veth_mac
        from ..network.netlink import Netlink, _in_netns
        aid = attachment_id(self.net.name, env.container_id, env.ifname)
        c = self._load(aid)
        if c is None or c.state != "created" or c.network is None:
            raise CniError(E_UNKNOWN_CONTAINER, f"container {env.container_id} is not "
                           f"attached to network {self.net.name} as {env.ifname}")
        att = c.network
        problems = []
        nl = Netlink()
        try:
            br = nl.link(self.net.bridge)
            if br is None or normalize(br.mac) != normalize(self.driver.bridge_mac):
                problems.append(f"bridge {self.net.bridge} is missing or not minirun's")
            veth = nl.link(att.veth)
            if veth is None or normalize(veth.mac) != normalize(veth_mac(c.id)):
                problems.append(f"veth {att.veth} is missing or not minirun's")
            elif br is not None and veth.master != br.index:
                problems.append(f"veth {att.veth} is not plugged into {self.net.bridge}")
        finally:
            nl.close()
        try:
            fd = os.open(env.netns, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise CniError(E_CHECK_FAILED, f"cannot open CNI_NETNS {env.netns}: {e}") from None
        try:
            inner = _in_netns(fd)
            try:
                link = inner.link(env.ifname)
                if link is None or normalize(link.mac) != normalize(att.mac):
                    problems.append(f"{env.ifname} in {env.netns} is missing or has "
                                    "another MAC")
            finally:
                inner.close()
        finally:
            os.close(fd)
        if self.driver.store.ipam(self.net).leases().get(att.ip) != c.id:
            problems.append(f"the lease of {att.ip} is not this attachment's")
        if att.ports and not self.driver.firewall_intact():
            problems.append("the network's firewall rules are not intact")
        if problems:
            raise CniError(E_CHECK_FAILED, "; ".join(problems))

    # -- GC (1.1) --------------------------------------------------------------------
    def gc(self) -> None:
        from .. import fsutil
        valid = set(self.conf.valid_attachments or ())
        errors = []
        if not self.paths.containers.is_dir():
            return
        for d in sorted(self.paths.containers.iterdir()):
            ident = fsutil.read_json(d / RECORD) if d.is_dir() else None
            if not ident or ident.get("network") != self.net.name:
                continue
            if (ident.get("containerID"), ident.get("ifname")) in valid:
                continue
            env = Env({"CNI_CONTAINERID": ident["containerID"], "CNI_IFNAME": ident["ifname"]})
            try:
                self.delete(env)
            except CniError as e:
                errors.append(f"{ident['containerID']}/{ident['ifname']}: {e.msg}")
        if errors:
            raise CniError(E_TRY_AGAIN, "GC could not remove every stale attachment",
                           "; ".join(errors))

    # -- STATUS (1.1) ----------------------------------------------------------------
    def status(self) -> None:
        from ..errors import MinirunError
        try:
            self.driver._firewall().check_available()
        except MinirunError as e:
            raise CniError(E_NOT_AVAILABLE, str(e)) from None


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def run(environ, stdin_text: str) -> tuple[int, dict | None]:
    """One invocation: (exit code, what to print on stdout)."""
    from ..errors import Conflict, MinirunError
    env = Env(environ)
    version = LATEST
    try:
        try:
            raw = json.loads(stdin_text) if stdin_text.strip() else None
        except ValueError as e:
            raise CniError(E_DECODE, f"cannot decode the network configuration: {e}") from None
        if isinstance(raw, dict) and isinstance(raw.get("cniVersion"), str):
            version = raw["cniVersion"] if raw["cniVersion"] in SUPPORTED_VERSIONS else LATEST
        if env.command == "VERSION":
            return 0, {"cniVersion": version, "supportedVersions": list(SUPPORTED_VERSIONS)}
        if env.command not in ("ADD", "DEL", "CHECK", "GC", "STATUS"):
            raise CniError(E_INVALID_ENV, f"unknown CNI_COMMAND {env.command!r}")
        if raw is None:
            raise CniError(E_DECODE, "no network configuration on stdin")
        conf = parse(raw)
        if env.command in ("GC", "STATUS") and _vtuple(conf.cni_version) < (1, 1, 0):
            raise CniError(1, f"{env.command} needs cniVersion 1.1.0 or later")
        if env.command == "CHECK" and _vtuple(conf.cni_version) < (0, 4, 0):
            raise CniError(1, "CHECK needs cniVersion 0.4.0 or later")
        plugin = Plugin(conf)
        if env.command in ("ADD", "DEL", "GC"):
            plugin.sweep()
        if env.command == "ADD":
            env.require("container_id", "netns", "ifname")
            return 0, plugin.add(env)
        if env.command == "DEL":
            env.require("container_id", "ifname")
            plugin.delete(env)
            return 0, None
        if env.command == "CHECK":
            env.require("container_id", "netns", "ifname")
            plugin.check(env)
            return 0, None
        if env.command == "GC":
            plugin.gc()
            return 0, None
        plugin.status()
        return 0, None
    except CniError as e:
        return 1, e.to_json(version)
    except Conflict as e:
        return 1, CniError(E_CONFLICT, str(e)).to_json(version)
    except MinirunError as e:
        return 1, CniError(E_PLUGIN, str(e)).to_json(version)
    except OSError as e:
        return 1, CniError(E_IO, f"I/O error: {e}").to_json(version)


def main() -> None:
    try:
        text = sys.stdin.read() if not sys.stdin.isatty() else ""
    except OSError:
        text = ""
    code, out = run(os.environ, text)
    if out is not None:
        _emit(out)
    sys.exit(code)


if __name__ == "__main__":
    main()
