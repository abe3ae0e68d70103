"""A throwaway "host" for end-to-end tests.

Each `Host` is a long-lived `sleep` process in its own network and mount
namespaces (private propagation), with its own /run/netns, its own sysfs and
its own minirun state directories. Everything minirun creates for a test --
links, bridges, nftables/iptables rules, netns mounts, records -- lives inside
it, so nothing touches the real host and leak counts are exact. Killing the
process at the end makes the kernel drop whatever a failing test left behind.

Commands run inside with `nsenter`, exactly as a user would type them.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
ROOTFS = Path(os.environ.get("MINIRUN_TEST_ROOTFS", PROJECT / "rootfs"))
MINIRUN = [sys.executable, "-m", "minirun"]


def _container_processes(root: str) -> list[int]:
    """Processes in another PID namespace whose mounts come from this host's state root:
    a container that would outlive its records."""
    own = os.readlink("/proc/self/ns/pid")
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") == own:
                continue
            with open(f"/proc/{entry}/mountinfo") as f:
                if root in f.read():
                    found.append(int(entry))
        except OSError:
            continue
    return sorted(found)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _counts(p: Path) -> bool:
    if p.name.endswith(".lock") or p.name in ("lock", "last_reserved"):
        return False
    if p.parent.name == "networks" and p.suffix == ".json":
        return False
    if any(a.name == "images" and a.parent.name == "lib" for a in p.parents):
        return False  # the image store persists by design (minirun/images/)
    return "libexec" not in p.parts


class Host:
    def __init__(self, name: str = "host"):
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"minirun-{name}-"))
        self.root = self.dir / "lib"
        self.runroot = self.dir / "run"
        aside = self.dir / "cgroup"
        aside.mkdir()
        # The shell holds the namespaces open; `exec sleep` keeps its PID.
        # A fresh sysfs hides /sys/fs/cgroup: its mounts are put aside first and put
        # back onto the new one.
        script = (
            f"mount --rbind /sys/fs/cgroup {aside} && "
            "mount -t sysfs sysfs /sys && "
            f"mount --rbind {aside} /sys/fs/cgroup && umount -l {aside} && "
            "mount --make-rprivate / && "
            # netns names the real host has are not ours: drop our copies of them (first
            # any bind of /run/netns over them, as podman and `ip netns add` make: names
            # mounted before it are hidden under it, unreachable by their path)
            "while mountpoint -q /run/netns; do umount -l /run/netns; done; "
            "for m in $(awk '$5 ~ \"^/run/netns/\" {print $5}' /proc/self/mountinfo); do "
            "umount -l $m; done; "
            "mount -t tmpfs -o mode=755 tmpfs /run/netns 2>/dev/null || "
            "{ mkdir -p /run/netns && mount -t tmpfs -o mode=755 tmpfs /run/netns; } ; "
            "ip link set lo up && exec sleep infinity"
        )
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c", script],
            stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if os.readlink(f"/proc/{self.pid}/exe").endswith("sleep"):
                    break
            except OSError:
                pass
            time.sleep(0.01)
        else:
            raise RuntimeError("throwaway host did not start")

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINIRUN_")}
        env.update(MINIRUN_ROOT=str(self.root), MINIRUN_RUNROOT=str(self.runroot),
                   PYTHONPATH=str(PROJECT))
        return env

    def _nsenter(self, argv: list[str]) -> list[str]:
        return ["nsenter", "-t", str(self.pid), "-n", "-m", "--"] + argv

    def run(self, argv: list[str] | str, *, check: bool = False, timeout: float = 60,
            input: str | None = None, **kw) -> subprocess.CompletedProcess:
        """Run a command inside this host; a string is given to sh -c."""
        if isinstance(argv, str):
            argv = ["sh", "-c", argv]
        return subprocess.run(self._nsenter(argv), capture_output=True, text=True, env=self.env,
                              timeout=timeout, check=check, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL, **kw)

    def popen(self, argv: list[str], **kw) -> subprocess.Popen:
        return subprocess.Popen(self._nsenter(argv), env=self.env, **kw)

    def minirun(self, *args: str, check: bool = False, timeout: float = 60,
                input: str | None = None) -> subprocess.CompletedProcess:
        res = self.run(MINIRUN + list(args), timeout=timeout, input=input)
        if check and res.returncode != 0:
            raise AssertionError(f"minirun {shlex.join(args)} -> {res.returncode}\n"
                                 f"stdout: {res.stdout}\nstderr: {res.stderr}")
        return res

    def sh(self, script: str, check: bool = True) -> str:
        res = self.run(script)
        if check and res.returncode != 0:
            raise AssertionError(f"{script} -> {res.returncode}\n{res.stdout}{res.stderr}")
        return res.stdout

    def wait_for(self, probe: str, timeout: float = 10) -> None:
        """Run the shell command `probe` until it succeeds (a server starting up)."""
        deadline = time.monotonic() + timeout
        while self.run(probe).returncode != 0:
            assert time.monotonic() < deadline, f"timed out: {probe}"
            time.sleep(0.05)

    def add_lan_host(self, host_ip: str, lan_ip: str, name: str = "lan") -> None:
        """"Another host on the LAN": namespace `name` at `lan_ip`/24 behind a veth, whose
        host end `<name>0` has `host_ip`/24. remove_lan_host(name) undoes it."""
        self.sh(f"""
            ip netns add {name}
            ip link add {name}0 type veth peer name eth0 netns {name}
            ip addr add {host_ip}/24 dev {name}0 && ip link set {name}0 up
            ip -n {name} addr add {lan_ip}/24 dev eth0 && ip -n {name} link set eth0 up
            ip -n {name} link set lo up
        """)

    def remove_lan_host(self, name: str = "lan") -> None:
        self.run(f"ip link del {name}0; ip netns del {name}")

    def inspect(self, name: str) -> dict:
        """`minirun inspect NAME`: Docker's object for the container."""
        [obj] = json.loads(self.minirun("inspect", name, check=True).stdout)
        return obj

    def record(self, name: str) -> dict:
        """The container's own record (state.json), with Docker's word for its state as
        "status": what a test of minirun's internals looks at."""
        obj = self.inspect(name)
        rec = json.loads(Path(obj["Minirun"]["Record"]).read_text())
        return dict(rec, status=obj["State"]["Status"])

    # -- leak accounting -------------------------------------------------
    def inventory(self) -> dict[str, object]:
        """Everything minirun could leave behind, counted exactly."""
        links = self.sh("ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//'").split()
        # iptables-nft leaves its empty built-in tables behind; they are not minirun's.
        nft = self.run("nft list table ip minirun 2>/dev/null").stdout
        ipt = self.run("iptables-save 2>/dev/null | grep -E '^(-A|:MINIRUN)' || true").stdout
        netns = sorted(os.listdir(f"/proc/{self.pid}/root/run/netns"))
        mounts = self.sh("cat /proc/self/mountinfo | grep -c ' /run/netns/' || true").strip()
        # Records that stand for live objects: containers, address leases, port
        # reservations. Network definitions, cursors and lock files are not leaks.
        records = []
        for base in (self.root, self.runroot):
            if base.exists():
                records += sorted(str(p.relative_to(self.dir)) for p in base.rglob("*")
                                  if p.is_file() and _counts(p))
        procs = self.sh("ps -e -o pid= -o args= || true")
        # cgroups are host-wide: count this state root's only (minirun-<root tag>)
        tag = self.cgroup_tag
        cgroups = []
        for top, dirs, _files in os.walk("/sys/fs/cgroup"):
            if tag in top.split("/"):
                cgroups.append(top)
            elif top.count("/") >= 5:
                dirs[:] = [d for d in dirs if d == tag]
        containers = _container_processes(str(self.root))
        return {"links": sorted(links), "nft": nft, "iptables": ipt, "netns": netns,
                "mounts": mounts, "records": records,
                # the PID namespace is the real host's: count only this host's monitors
                "container_procs": [l for l in procs.splitlines()
                                    if "minirun-monitor" in l and str(self.root) in l],
                # this host's aardvark-dns (its command line names our runroot)
                "dns_procs": [l for l in procs.splitlines()
                              if "aardvark-dns" in l and str(self.runroot) in l
                              and "<defunct>" not in l],
                "containers": containers, "cgroups": sorted(cgroups)}

    def close(self) -> None:
        # Stop whatever minirun left running inside (best effort), then drop the namespaces.
        try:
            self.minirun("rm", "-f", "--all", timeout=30)
        except Exception:
            pass
        # A failed test (or a broken minirun) may leave containers, their monitors and
        # cgroups that `rm` could not remove: they must not outlive the test. The
        # monitors first, so none tears down (or waits) any more.
        for line in subprocess.run(["ps", "-e", "-o", "pid=", "-o", "args="],
                                   capture_output=True, text=True).stdout.splitlines():
            pid, _, args = line.strip().partition(" ")
            # a monitor, or its cleanup waiting to restart a container (--restart)
            if ("minirun-monitor" in args or "_cleanup" in args) and str(self.root) in args:
                _kill(int(pid))
            if "aardvark-dns" in args and str(self.runroot) in args:
                _kill(int(pid))  # it would keep the host's network namespace alive
        for pid in _container_processes(str(self.root)):
            _kill(pid)
        for top, dirs, _files in sorted(os.walk("/sys/fs/cgroup"), reverse=True):
            if self.cgroup_tag in top.split("/"):
                try:
                    os.rmdir(top)  # innermost first (reversed walk): empty once killed
                except OSError:
                    pass
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        subprocess.run(["rm", "-rf", str(self.dir)])

    @property
    def cgroup_tag(self) -> str:
        import hashlib
        return "minirun-" + hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:8]


def podman_on_minirun_cni(host: Host, network: str, bridge: str, default: bool = False,
                          runtime: str | None = None) -> list[str]:
    """podman (its CNI backend) with a conflist `network` of minirun's CNI plugin on
    `bridge` (203.0.113.0/24), all under the host's directory: the podman command to
    run (`default`: the network podman uses when none is named; `runtime`: --runtime)."""
    d = host.dir
    (d / "cni-plugins").mkdir()
    (d / "net.d").mkdir()
    plugin = d / "cni-plugins" / "minirun-cni"
    plugin.write_text(f"#!/bin/sh\nPYTHONPATH={PROJECT} exec {sys.executable} "
                      "-m minirun.cni.plugin\n")
    plugin.chmod(0o755)
    (d / "net.d" / f"{network}.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": network,
        "plugins": [{"type": "minirun-cni", "bridge": bridge, "subnet": "203.0.113.0/24",
                     "dataDir": str(host.root / "cni"), "runDir": str(host.runroot / "cni"),
                     "capabilities": {"portMappings": True}}]}))
    default_line = f'default_network = "{network}"\n' if default else ""
    (d / "containers.conf").write_text(f"""\
[network]
network_backend = "cni"
{default_line}cni_plugin_dirs = ["{d}/cni-plugins"]
network_config_dir = "{d}/net.d"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{d}/podman-tmp"
""")
    return (["env", f"CONTAINERS_CONF={d}/containers.conf", "podman", "--root",
             str(d / "podman-root"), "--runroot", str(d / "podman-run"), "--storage-driver",
             "vfs"] + (["--runtime", runtime] if runtime else []))
