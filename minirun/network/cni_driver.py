"""`--network cni:NAME`: any CNI plugin chain for a minirun container (as podman's CNI
backend, or containerd's CRI plugin, drive one).

The chain is the conflist whose `name` is NAME in the CNI configuration directory
($MINIRUN_CNI_CONFIG_DIR, default /etc/cni/net.d; `.conflist`, or a single-plugin
`.conf`/`.json`), its plugins are found in $MINIRUN_CNI_PLUGIN_DIR (a colon-separated
list, default /usr/lib/cni:/opt/cni/bin: Debian's containernetworking-plugins,
then upstream's place). -p becomes the `portMappings` runtime capability, --ip the
`IP` CNI_ARG (host-local honours it).

attach, after fork, each a journal step:
  net.netns   ip netns attach NAME PID (the CNI_NETNS given to the plugins)
  net.cni     the chain's ADD, plugin by plugin, each given the previous result. The
              intent holds everything DEL needs, written before the first plugin
              runs: the conflist as it was read (the file may change or go), the
              plugin directories, CNI_CONTAINERID (the container's id), CNI_IFNAME,
              CNI_NETNS, the port mappings; the chain's result is added to it.
undo: the chain's DEL in reverse order, with the recorded result as prevResult (the
CNI way of proving what is whose: every plugin keys its state -- host-local's
leases, portmap's chains -- by the container id, which is ours alone), then the
name of the namespace. A failed or killed ADD is undone by the same DEL, as the
spec requires of a runtime. DEL works without the namespace (plugins skip what went
with it).
"""
from __future__ import annotations

import json
import os

from ..errors import MinirunError, UsageError
from ..failures import Failure
from ..record import Attachment, Container, Port, Step
from ..state import save
from . import netns

DEFAULT_CONFIG_DIR = "/etc/cni/net.d"
DEFAULT_PLUGIN_DIRS = "/usr/lib/cni:/opt/cni/bin"
IFNAME = "eth0"
TIMEOUT = 60


def config_dir() -> str:
    return os.environ.get("MINIRUN_CNI_CONFIG_DIR") or DEFAULT_CONFIG_DIR


def plugin_dirs() -> list[str]:
    return [d for d in (os.environ.get("MINIRUN_CNI_PLUGIN_DIR")
                        or DEFAULT_PLUGIN_DIRS).split(":") if d]


def load_conflist(name: str, directory: str) -> dict:
    """The configuration list named `name` (by its "name" key, as libcni finds it), with
    a single-plugin .conf turned into a list; UsageError if there is none or it is bad."""
    try:
        files = sorted(os.listdir(directory))
    except OSError as e:
        raise UsageError(f"cannot read the CNI configuration directory {directory}: "
                         f"{e.strerror}") from None
    for f in files:
        if not f.endswith((".conflist", ".conf", ".json")):
            continue
        path = os.path.join(directory, f)
        try:
            with open(path) as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            continue  # libcni skips what it cannot read too
        if not isinstance(data, dict) or data.get("name") != name:
            continue
        if "plugins" not in data:  # a .conf: one plugin
            plugin = {k: v for k, v in data.items() if k not in ("name", "cniVersion")}
            data = {"cniVersion": data.get("cniVersion"), "name": name, "plugins": [plugin]}
        plugins = data.get("plugins")
        if not isinstance(plugins, list) or not plugins or not all(
                isinstance(p, dict) and isinstance(p.get("type"), str) and p["type"]
                and "/" not in p["type"] for p in plugins):
            raise UsageError(f"CNI network {name} ({path}): plugins must be a non-empty list "
                             "of objects with a type")
        if not isinstance(data.get("cniVersion"), str):
            raise UsageError(f"CNI network {name} ({path}): cniVersion is missing")
        return data
    raise UsageError(f"no CNI network named {name!r} in {directory}")


def find_plugin(kind: str, dirs: list[str]) -> str:
    for d in dirs:
        path = os.path.join(d, kind)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise UsageError(f"CNI plugin {kind!r} not found in {':'.join(dirs)}")


def exec_plugin(command: str, plugin: dict, net: dict, dirs: list[str], container_id: str,
                netns_path: str, ifname: str, cni_args: str, prev: dict | None,
                runtime_config: dict) -> dict | None:
    """Run one plugin of the chain (libcni's invoke): its config is the plugin's entry
    with the list's name and cniVersion, the previous result, and the runtime
    capabilities it declares."""
    import shlex
    import subprocess

    from .. import oplog
    conf = dict(plugin, name=net["name"], cniVersion=net["cniVersion"])
    if prev is not None:
        conf["prevResult"] = prev
    caps = plugin.get("capabilities") or {}
    rc = {k: v for k, v in runtime_config.items() if caps.get(k) and v}
    if rc:
        conf["runtimeConfig"] = rc
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": netns_path,
           "CNI_IFNAME": ifname, "CNI_ARGS": cni_args, "CNI_PATH": ":".join(dirs),
           "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
    binary = find_plugin(plugin["type"], dirs)
    shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k != "PATH")
    oplog.record(f"{shown} {binary} <<'EOF'\n{json.dumps(conf)}\nEOF",
                 why=f"CNI {command}: plugin {plugin['type']} of network {net['name']}")
    if oplog.skip():
        return prev
    try:
        res = subprocess.run([binary], input=json.dumps(conf).encode(), env=env,
                             capture_output=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise MinirunError(f"CNI plugin {plugin['type']} {command} timed out") from None
    out = res.stdout.decode(errors="replace").strip()
    if res.returncode != 0:
        try:
            err = json.loads(out)
            why = f"{err.get('msg')}" + (f" ({err['details']})" if err.get("details") else "")
            why += f" [code {err.get('code')}]"
        except (ValueError, AttributeError):
            why = (out or res.stderr.decode(errors="replace").strip() or
                   f"exit status {res.returncode}")
        raise MinirunError(f"CNI plugin {plugin['type']} {command} failed: {why}")
    if not out:
        return None
    try:
        return json.loads(out)
    except ValueError:
        raise MinirunError(f"CNI plugin {plugin['type']} {command}: its output is not "
                           "JSON") from None


def first_ipv4(result: dict | None) -> str | None:
    for ip in (result or {}).get("ips") or []:
        addr = str(ip.get("address", "")).split("/")[0]
        if addr and ":" not in addr:
            return addr
    return None


class CniDriver:
    name = "cni"
    new_netns = True

    def __init__(self, network: str, conflist: dict | None = None):
        self.network = network
        self.conflist = conflist

    def _load(self) -> dict:
        if self.conflist is None:
            self.conflist = load_conflist(self.network, config_dir())
        return self.conflist

    # -- before anything exists ----------------------------------------------------
    def preflight(self, spec, ports: list) -> None:
        """The conflist exists and is sound, every plugin of it is installed, the
        namespace name is free; creates nothing."""
        net = self._load()
        for p in net["plugins"]:
            find_plugin(p["type"], plugin_dirs())
        if ports and not any((p.get("capabilities") or {}).get("portMappings")
                             for p in net["plugins"]):
            raise UsageError(f"CNI network {self.network} cannot publish ports: none of its "
                             "plugins has the portMappings capability (add portmap)")
        if spec.name:
            netns.check_free(spec.name)

    def prepare(self, c: Container) -> None:
        from .ports import pick_free_port
        ports = []
        taken: set[int] = set()
        for m in c.config.ports:
            port = m.host_port or pick_free_port(m.host_ip, m.proto, taken,
                                                 tuple(m.host_range) if m.host_range else None)
            taken.add(port)
            ports.append(Port(m.host_ip, port, m.container_port, m.proto))
        c.network = Attachment(driver=self.name, netns=c.name, network=self.network,
                               ports=tuple(ports))
        save(c)

    def join_path(self, c: Container) -> str | None:
        return None

    def hosts_entries(self, c: Container) -> list[tuple[str, str]]:
        return []  # the address is the chain's to choose, after /etc/hosts is written

    # -- after fork --------------------------------------------------------------------
    def attach(self, c: Container, pid: int) -> None:
        from .. import faults, journal
        net = self._load()
        netns.attach_step(c, c.network.netns, pid)
        mappings = [{"hostPort": p.host_port, "containerPort": p.container_port,
                     "protocol": p.proto, "hostIP": p.host_ip or ""} for p in c.network.ports]
        args = f"IgnoreUnknown=1;IP={c.config.requested_ip}" if c.config.requested_ip else ""
        faults.check("attach.cni")
        with journal.step(c, "net.cni", conflist=net, plugin_dirs=plugin_dirs(),
                          container_id=c.id, ifname=IFNAME, netns=netns.path(c.network.netns),
                          args=args, port_mappings=mappings) as intent:
            result = None
            for p in net["plugins"]:
                result = exec_plugin("ADD", p, net, intent["plugin_dirs"], c.id,
                                     intent["netns"], IFNAME, args, result,
                                     {"portMappings": mappings})
            intent["result"] = result
        ip = first_ipv4(result)
        mac = next((i.get("mac") for i in (result or {}).get("interfaces") or []
                    if i.get("sandbox") and i.get("name") == IFNAME), None)
        c.network = c.network._replace(ip=ip, mac=mac)
        save(c)

    # -- undo ----------------------------------------------------------------------------
    def undo(self, c: Container, steps: list[Step]) -> list[Failure]:
        failures: list[Failure] = []
        for s in steps:
            if s.kind == "net.cni":
                failures += self._delete(s.intent)
        return failures + netns.undo_steps(c, steps)

    @staticmethod
    def _delete(i: dict) -> list[Failure]:
        """The chain's DEL, last plugin first; every plugin is asked even if one fails."""
        net = i["conflist"]
        prev = i.get("result")
        failures = []
        netns_path = i["netns"] if os.path.exists(i["netns"]) else ""
        for p in reversed(net["plugins"]):
            try:
                exec_plugin("DEL", p, net, i["plugin_dirs"], i["container_id"], netns_path,
                            i["ifname"], i.get("args", ""), prev,
                            {"portMappings": i.get("port_mappings") or []})
            except Exception as e:  # noqa: BLE001 - teardown goes on
                failures.append(Failure(f"CNI DEL ({p.get('type')})", net.get("name", ""),
                                        str(e)))
        return failures
