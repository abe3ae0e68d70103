"""Helpers of scripts/bench: timing, processes, the peers (runc, crun, podman, docker),
and finding and removing what the peers leave on the host.

Nothing here installs anything; a peer that is missing or fails is skipped with a note.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

# ---------------------------------------------------------------- small helpers


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(cmd, timeout: float = 120, check: bool = False, **kw) -> subprocess.CompletedProcess:
    """Run a command quietly; output captured as text."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("capture_output", True)
    p = subprocess.run(cmd, timeout=timeout, text=True, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{shlex.join(map(str, cmd))}: exit {p.returncode}: "
                           f"{last_line(p.stderr or p.stdout)}")
    return p


def timed(cmd, timeout: float = 120) -> tuple[float, subprocess.CompletedProcess]:
    """Whole-process wall time of one command (fork+exec+wait), in seconds."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=timeout, text=True)
    return time.perf_counter() - t0, p


def last_line(text: str | None) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


def summary(samples: list[float]) -> dict:
    if not samples:
        return {"n": 0}
    return {"n": len(samples), "median": statistics.median(samples), "min": min(samples),
            "max": max(samples), "mean": statistics.fmean(samples)}


def ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:.0f} ms" if x >= 0.0995 else f"{x * 1000:.1f} ms"


def table(header: tuple, rows: list[tuple], indent: str = "  ") -> str:
    rows = [tuple("" if v is None else str(v) for v in r) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    out = []
    for i, row in enumerate((header, *rows)):
        out.append(indent + "  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
        if i == 0:
            out.append(indent + "  ".join("-" * w for w in widths))
    return "\n".join(out)


def port_free(port: int) -> bool:
    for family, addr in ((socket.AF_INET, "0.0.0.0"),):
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.bind((addr, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


class PortPool:
    """Free TCP host ports below the ephemeral range, handed out once each."""

    def __init__(self, start: int = 20000, stop: int = 32000):
        self.next, self.stop = start, stop

    def take(self, n: int = 1) -> list[int]:
        out = []
        while len(out) < n:
            if self.next >= self.stop:
                raise RuntimeError("no free host ports left in 20000-32000")
            if port_free(self.next):
                out.append(self.next)
            self.next += 1
        return out

    def one(self) -> int:
        return self.take(1)[0]


def wait_until(pred, timeout: float = 10, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except Exception:  # noqa: BLE001
            pass
        time.sleep(step)
    return False


def listening(port: int, prefix: list[str] = ()) -> bool:
    """Is something listening on TCP PORT (in the network namespace PREFIX enters)?"""
    p = run([*prefix, "ss", "-Hltn", f"sport = :{port}"], timeout=10)
    return p.returncode == 0 and bool(p.stdout.strip())


# ---------------------------------------------------------------- processes and memory


def ppid_of(pid: int) -> int | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return int(data[data.rindex(b")") + 2:].split()[1])


def comm_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def descendants(pid: int) -> list[int]:
    """PID and all its descendants."""
    kids: dict[int, list[int]] = {}
    for e in os.scandir("/proc"):
        if e.name.isdigit():
            pp = ppid_of(int(e.name))
            if pp is not None:
                kids.setdefault(pp, []).append(int(e.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def smaps(pid: int) -> dict:
    """Rss and Pss (KiB) of one process from /proc/PID/smaps_rollup."""
    out = {"rss_kb": 0, "pss_kb": 0}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k == "Rss":
            out["rss_kb"] = int(v.split()[0])
        elif k == "Pss":
            out["pss_kb"] = int(v.split()[0])
    return out


def meminfo() -> dict:
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = int(v.split()[0])
    return out


def kill_pid(pid: int, grace: float = 10) -> None:
    """SIGTERM one process we started, then SIGKILL after GRACE seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not wait_until(lambda: not Path(f"/proc/{pid}").exists()
                      or Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z",
                      grace):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def pids_mentioning(text: str) -> list[int]:
    """Processes whose command line contains TEXT (a path of our own temp dir)."""
    out = []
    for e in os.scandir("/proc"):
        if not e.name.isdigit() or int(e.name) == os.getpid():
            continue
        try:
            cmd = Path(e.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            out.append(int(e.name))
    return out


# ---------------------------------------------------------------- host state and peer leftovers

PEER_CHAIN = re.compile(r"^(DOCKER|NETAVARK|CNI-)")
PEER_LINK = re.compile(r"^(docker0|docker_gwbridge|podman\d+|cni-podman\d+|br-[0-9a-f]{12})$")
PEER_DIRS = ["/run/containers", "/run/libpod", "/run/crun", "/run/runc", "/run/docker",
             "/run/containerd", "/run/docker.sock", "/var/lib/containers", "/var/lib/docker",
             "/var/lib/containerd", "/var/lib/cni", "/run/netavark"]
# directories a package owns, where only new files are the peers' (dockerd's key.json)
PEER_FILE_DIRS = ["/etc/docker", "/etc/containers/networks"]
PEER_CGROUP = re.compile(r"^(docker|libpod_parent|machine\.slice|mrb\d+-.*)$")
PEER_NETNS = re.compile(r"^(netns-[0-9a-f-]{36}|cni-[0-9a-f-]{36})$")
IPT = ("iptables", "ip6tables")


def _ipt_save(cmd: str) -> dict[str, list[str]]:
    """{table: lines} of iptables-save, or {} when the command is missing."""
    if not shutil.which(f"{cmd}-save"):
        return {}
    p = run([f"{cmd}-save"], timeout=30)
    out, cur = {}, None
    for line in p.stdout.splitlines():
        if line.startswith("*"):
            cur = line[1:]
            out[cur] = []
        elif cur and (line.startswith(":") or line.startswith("-A")):
            out[cur].append(line)
    return out


def _chains(lines: list[str]) -> set[str]:
    return {ln[1:].split()[0] for ln in lines if ln.startswith(":")}


def links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def nft_tables() -> set[str]:
    if not shutil.which("nft"):
        return set()
    p = run(["nft", "list", "tables"], timeout=30)
    return {ln[len("table "):].strip() for ln in p.stdout.splitlines() if ln.startswith("table ")}


def _cgroup_dirs() -> set[str]:
    out = set()
    base = Path("/sys/fs/cgroup")
    try:
        hier = [base] + [p for p in base.iterdir() if p.is_dir()]
    except OSError:
        return out
    for h in hier:
        try:
            for p in h.iterdir():
                if p.is_dir() and PEER_CGROUP.match(p.name):
                    out.add(str(p))
        except OSError:
            pass
    return out


def _files_in(dirs: list[str]) -> set[str]:
    out = set()
    for d in dirs:
        try:
            out |= {e.path for e in os.scandir(d) if not e.is_dir(follow_symlinks=False)}
        except OSError:
            pass
    return out


def _netns() -> set[str]:
    try:
        return set(os.listdir("/run/netns"))
    except OSError:
        return set()


def _netns_dir_mounted() -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == "/run/netns" for line in f)


class HostState:
    """What the host had before the bench, so that only what appeared is removed."""

    def __init__(self):
        self.ipt = {cmd: {t: _chains(lines) for t, lines in _ipt_save(cmd).items()} for cmd in IPT}
        self.links = links()
        self.nft = nft_tables()
        self.dirs = {d for d in PEER_DIRS if os.path.lexists(d)}
        self.files = _files_in(PEER_FILE_DIRS)
        self.cgroups = _cgroup_dirs()
        self.netns = _netns()
        self.netns_mounted = _netns_dir_mounted()
        self.ip_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()

    def remove_peer_leftovers(self) -> list[str]:
        """Remove the peers' chains, rules, bridges, netns files, cgroups and state dirs
        that appeared since this snapshot. Returns what was removed."""
        done = []
        for cmd in IPT:
            for t, lines in _ipt_save(cmd).items():
                new = {c for c in _chains(lines) - self.ipt.get(cmd, {}).get(t, set())
                       if PEER_CHAIN.match(c)}
                bridges = {ln for ln in links() - self.links if PEER_LINK.match(ln)} | \
                          {"docker0", "podman0"} - self.links
                for ln in lines:
                    if not ln.startswith("-A "):
                        continue
                    chain, rule = ln[3:].split(" ", 1)
                    if chain in new:
                        continue
                    words = shlex.split(rule)
                    targets = {words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-j", "-g")}
                    ifaces = {words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-i", "-o")}
                    if targets & new or ifaces & bridges:
                        if run([cmd, "-w", "-t", t, "-D", chain, *words]).returncode == 0:
                            done.append(f"{cmd} -t {t} -D {chain} {rule}")
                for c in sorted(new):
                    run([cmd, "-w", "-t", t, "-F", c])
                for c in sorted(new):
                    if run([cmd, "-w", "-t", t, "-X", c]).returncode == 0:
                        done.append(f"{cmd} -t {t} -X {c}")
        for ln in sorted(links() - self.links):
            if PEER_LINK.match(ln) and run(["ip", "link", "delete", ln]).returncode == 0:
                done.append(f"ip link delete {ln}")
        for name in sorted(_netns() - self.netns):
            if PEER_NETNS.match(name):
                path = f"/run/netns/{name}"
                run(["umount", "-l", path])
                try:
                    os.unlink(path)
                    done.append(f"rm {path}")
                except OSError:
                    pass
        # podman (like `ip netns add`) turns /run/netns into a shared bind mount of itself
        if not self.netns_mounted and _netns_dir_mounted() and not _netns():
            if run(["umount", "/run/netns"]).returncode == 0:
                done.append("umount /run/netns")
        for d in sorted(_cgroup_dirs() - self.cgroups, key=lambda p: -p.count("/")):
            for sub in sorted((str(p) for p in Path(d).rglob("*") if p.is_dir()),
                              key=lambda p: -p.count("/")):
                try:
                    os.rmdir(sub)
                except OSError:
                    pass
            try:
                os.rmdir(d)
                done.append(f"rmdir {d}")
            except OSError:
                pass
        for d in PEER_DIRS:
            if d not in self.dirs and os.path.lexists(d):
                _umount_under(d)
                if os.path.isdir(d) and not os.path.islink(d):
                    shutil.rmtree(d, ignore_errors=True)
                else:
                    try:
                        os.unlink(d)
                    except OSError:
                        pass
                done.append(f"rm -rf {d}")
        for f in sorted(_files_in(PEER_FILE_DIRS) - self.files):
            try:
                os.unlink(f)
                done.append(f"rm {f}")
            except OSError:
                pass
        return done

    def remove_empty_new_tables(self) -> list[str]:
        """iptables-nft leaves `table ip nat`/`ip filter`/... behind: drop the new ones that
        hold no rule any more (checked with iptables-save)."""
        done = []
        saved = {"ip": _ipt_save("iptables"), "ip6": _ipt_save("ip6tables")}
        for t in sorted(nft_tables() - self.nft):
            fam, _, name = t.partition(" ")
            lines = saved.get(fam, {}).get(name)
            if lines is None:
                continue
            if not any(ln.startswith("-A") for ln in lines) and \
                    all(c.isupper() and not c.startswith(("MINIRUN", "DOCKER", "NETAVARK"))
                        for c in _chains(lines)):
                if run(["nft", "delete", "table", fam, name]).returncode == 0:
                    done.append(f"nft delete table {t}")
        return done

    def restore_ip_forward(self) -> list[str]:
        now = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
        busy = [ln for ln in links() if ln.startswith("minirun") or PEER_LINK.match(ln)]
        if now != self.ip_forward and not busy:
            Path("/proc/sys/net/ipv4/ip_forward").write_text(self.ip_forward)
            return [f"sysctl -w net.ipv4.ip_forward={self.ip_forward}"]
        return []


def _umount_under(path: str) -> None:
    """Lazily unmount every mount at or below PATH, deepest first."""
    mounts = []
    with open("/proc/self/mounts") as f:
        for line in f:
            mp = line.split()[1].encode().decode("unicode_escape")
            if mp == path or mp.startswith(path.rstrip("/") + "/"):
                mounts.append(mp)
    for mp in sorted(mounts, key=len, reverse=True):
        run(["umount", "-l", mp])


def remove_tree(path: str) -> None:
    if os.path.exists(path):
        _umount_under(path)
        shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- peers

ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096"]


class Peer:
    """One system to compare with. modes: the start-latency modes it supports."""

    name = "?"
    binary = "?"
    package = "?"
    modes: tuple[str, ...] = ()
    detached = False  # can run a detached container with a published port (data path)

    def __init__(self, tmp: Path, rootfs: str, tag: str):
        self.tmp, self.rootfs, self.tag = tmp / self.name, rootfs, tag
        self.note = ""
        self.ok = False
        self.version = ""
        self.counter = 0

    def installed(self) -> bool:
        return shutil.which(self.binary) is not None or os.path.exists(self.binary)

    def setup(self) -> bool:
        """Prepare; False (with self.note) when it cannot be compared."""
        if not self.installed():
            self.note = f"not installed (apt-get install {self.package} to compare)"
            return False
        self.tmp.mkdir(parents=True, exist_ok=True)
        try:
            self._setup()
        except Exception as e:  # noqa: BLE001
            self.note = f"setup failed: {e}"
            return False
        self.ok = True
        return True

    def _setup(self) -> None:
        pass

    def start_cmd(self, mode: str, port: int) -> list[str]:
        raise NotImplementedError

    def teardown(self) -> None:
        pass

    def next_name(self) -> str:
        self.counter += 1
        return f"{self.tag}-{self.name}-{self.counter}"


class Runc(Peer):
    name = binary = package = "runc"
    modes = ("none",)

    def _setup(self) -> None:
        bundle = self.tmp / "bundle"
        bundle.mkdir(exist_ok=True)
        run([self.binary, "spec"], cwd=bundle, check=True)
        cfg = json.loads((bundle / "config.json").read_text())
        cfg["root"] = {"path": self.rootfs, "readonly": False}
        cfg["process"]["args"] = ["/bin/true"]
        cfg["process"]["terminal"] = False
        namespaces = cfg["linux"].setdefault("namespaces", [])
        if not any(n["type"] == "network" for n in namespaces):
            namespaces.append({"type": "network"})
        (bundle / "config.json").write_text(json.dumps(cfg))
        self.bundle, self.state = bundle, self.tmp / "state"
        self.version = last_line(run([self.binary, "--version"]).stdout.splitlines()[0])

    def _cmd(self) -> list[str]:
        return [self.binary, "--root", str(self.state), "run", "--bundle", str(self.bundle),
                self.next_name()]

    def start_cmd(self, mode: str, port: int) -> list[str]:
        return self._cmd()

    def teardown(self) -> None:
        # `run` deletes its container when it exits; sweep any left by an interruption.
        if getattr(self, "state", None) and self.state.exists():
            for d in self.state.iterdir():
                run([self.binary, "--root", str(self.state), "delete", "-f", d.name])


class Crun(Runc):
    name = binary = package = "crun"

    def _cmd(self) -> list[str]:
        # crun refuses the hybrid cgroup layout: hide the unified mount in a private
        # mount namespace (FACTS.md). This adds an unshare and a sh to its time.
        inner = shlex.join([self.binary, "--root", str(self.state), "run", "--bundle",
                            str(self.bundle), self.next_name()])
        return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                f"umount /sys/fs/cgroup/unified 2>/dev/null; exec {inner}"]


class Podman(Peer):
    name = binary = package = "podman"
    modes = ("none", "bridge", "port")
    detached = True

    def _base(self) -> list[str]:
        return [self.binary, "--root", str(self.tmp / "root"), "--runroot", str(self.tmp / "run"),
                "--tmpdir", str(self.tmp / "tmp"), "--runtime", "runc",
                "--cgroup-manager", "cgroupfs", "--events-backend", "file"]

    def _setup(self) -> None:
        self.version = run([self.binary, "--version"]).stdout.strip()
        run(self._base() + ["info"], check=True, timeout=60)

    def _run(self, opts: list[str], cmd: list[str]) -> list[str]:
        return self._base() + ["run", *opts, *ULIMITS, "--rootfs", self.rootfs, *cmd]

    def start_cmd(self, mode: str, port: int) -> list[str]:
        net = {"none": ["--network", "none"], "bridge": [],
               "port": ["-p", f"{port}:80"]}[mode]
        return self._run(["--rm", *net], ["/bin/true"])

    def run_detached(self, name: str, publish: list[str], cmd: list[str]) -> str:
        opts = ["-d", "--name", name] + [x for p in publish for x in ("-p", p)]
        run(self._run(opts, cmd), check=True, timeout=60)
        return self.netns_path(name)

    def netns_path(self, name: str) -> str:
        p = run(self._base() + ["inspect", "-f", "{{.NetworkSettings.SandboxKey}}", name],
                check=True)
        return p.stdout.strip()

    def remove(self, name: str) -> None:
        run(self._base() + ["rm", "-f", "-t", "0", name], timeout=60)

    def teardown(self) -> None:
        if self.ok:
            run(self._base() + ["rm", "-a", "-f", "-t", "0"], timeout=120)


class Docker(Peer):
    name = package = "docker"
    package = "docker.io"
    binary = "/usr/bin/docker"
    daemon = "/usr/sbin/dockerd"
    modes = ("none", "bridge", "port")
    detached = True
    image = "minirun-bench:latest"

    def installed(self) -> bool:
        return os.access(self.binary, os.X_OK) and (
            os.access(self.daemon, os.X_OK) or shutil.which("dockerd") is not None)

    def _setup(self) -> None:
        self.sock = self.tmp / "docker.sock"
        self.proc = None
        daemon = self.daemon if os.access(self.daemon, os.X_OK) else shutil.which("dockerd")
        logf = open(self.tmp / "dockerd.log", "wb")
        self.proc = subprocess.Popen(
            [daemon, "--data-root", str(self.tmp / "data"), "--exec-root", str(self.tmp / "exec"),
             "-H", f"unix://{self.sock}", "--pidfile", str(self.tmp / "dockerd.pid")],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True)
        logf.close()
        if not wait_until(lambda: run(self._base() + ["version"], timeout=10).returncode == 0,
                          timeout=40, step=0.2):
            raise RuntimeError(f"dockerd did not come up: "
                               f"{last_line((self.tmp / 'dockerd.log').read_text())}")
        self.version = run(self._base() + ["version", "-f", "{{.Server.Version}}"]).stdout.strip()
        tar = subprocess.Popen(["tar", "-C", self.rootfs, "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(self._base() + ["import", "-", self.image], stdin=tar.stdout,
                             capture_output=True, text=True, timeout=120)
        tar.stdout.close()
        tar.wait()
        if imp.returncode != 0:
            raise RuntimeError(f"docker import: {last_line(imp.stderr)}")

    def _base(self) -> list[str]:
        return [self.binary, "-H", f"unix://{self.sock}"]

    def start_cmd(self, mode: str, port: int) -> list[str]:
        net = {"none": ["--network", "none"], "bridge": [],
               "port": ["-p", f"{port}:80"]}[mode]
        return self._base() + ["run", "--rm", *net, self.image, "/bin/true"]

    def run_detached(self, name: str, publish: list[str], cmd: list[str]) -> str:
        opts = ["-d", "--name", name] + [x for p in publish for x in ("-p", p)]
        run(self._base() + ["run", *opts, self.image, *cmd], check=True, timeout=60)
        p = run(self._base() + ["inspect", "-f", "{{.NetworkSettings.SandboxKey}}", name],
                check=True)
        return p.stdout.strip()

    def remove(self, name: str) -> None:
        run(self._base() + ["rm", "-f", name], timeout=60)

    def teardown(self) -> None:
        if getattr(self, "proc", None) is None:
            return
        if self.proc.poll() is None:
            p = run(self._base() + ["ps", "-aq"], timeout=30)
            ids = p.stdout.split()
            if ids:
                run(self._base() + ["rm", "-f", *ids], timeout=120)
            kill_pid(self.proc.pid, grace=20)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        # its containerd and shims (started with paths in our temp dir)
        for pid in pids_mentioning(str(self.tmp)):
            kill_pid(pid, grace=5)
        self.proc = None


PEERS = (Runc, Crun, Podman, Docker)
