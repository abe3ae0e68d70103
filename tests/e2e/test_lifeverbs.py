"""wait, rename, pause/unpause, exec -d, cp: the lifecycle verbs a Docker user expects."""
import json
import os

from harness import ROOTFS

R = str(ROOTFS)


def detach(host, name, *cmd, extra=()):
    res = host.minirun("run", "-d", "--name", name, "--network", "none", *extra, R, *cmd)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def status(host, name):
    return json.loads(host.minirun("inspect", name, check=True).stdout)["status"]


def test_wait_blocks_until_exit_and_prints_code(host, tmp_path):
    # the container exits when the test removes a file it waits for: no timing involved
    gate = "/tmp/gate"
    detach(host, "w", "sh", "-c", f"touch {gate}; while [ -e {gate} ]; do sleep 0.05; done; "
           "exit 3")
    waiter = host.popen(["python3", "-m", "minirun", "wait", "w"],
                        stdout=__import__("subprocess").PIPE, text=True)
    host.minirun("exec", "w", "rm", "-f", gate, check=True)
    out, _ = waiter.communicate(timeout=30)
    assert waiter.returncode == 0 and out == "3\n"
    # an exited container answers at once with its recorded code, several in one call
    detach(host, "z", "true")
    assert host.minirun("wait", "z", "w", check=True).stdout == "0\n3\n"
    res = host.minirun("wait", "nope", "w")
    assert res.returncode == 125 and res.stdout == "3\n"
    assert "no such container: nope" in res.stderr
    host.minirun("rm", "w", "z", check=True)


def test_rename_keeps_the_container_and_frees_the_old_name(host):
    cid = detach(host, "old", "sleep", "1000")
    detach(host, "taken", "sleep", "1000")
    res = host.minirun("rename", "old", "taken")
    assert res.returncode == 125 and "already in use" in res.stderr
    assert host.minirun("rename", "old", "bad/name").returncode == 125
    assert host.minirun("rename", "old", "new", check=True).stdout == ""
    rec = json.loads(host.minirun("inspect", "new", check=True).stdout)
    assert rec["id"] == cid and rec["name"] == "new" and rec["status"] == "running"
    assert host.minirun("inspect", "old").returncode == 125
    assert "new" in host.minirun("ps", check=True).stdout.split()
    assert host.minirun("exec", "new", "true").returncode == 0
    # the old name is free again (its network namespace keeps the name it was started
    # with while it runs: the new one has a network of its own)
    detach(host, "old", "true", extra=("--network", "host"))
    host.minirun("rm", "-f", "new", "old", "taken", check=True)


def test_pause_freezes_and_stop_of_a_paused_container_works(host):
    detach(host, "p", "sh", "-c", "while true; do echo x >> /tmp/ticks; sleep 0.01; done")
    host.minirun("pause", "p", check=True)
    assert status(host, "p") == "paused"
    ps = host.minirun("ps", check=True).stdout
    assert "paused" in ps
    rec = json.loads(host.minirun("inspect", "p", check=True).stdout)
    cg = [l for l in open(f"/proc/{rec['pid']}/cgroup").read().splitlines() if ":freezer:" in l]
    freezer = "/sys/fs/cgroup/freezer" + cg[0].split(":", 2)[2]
    assert open(f"{freezer}/freezer.state").read().strip() == "FROZEN"
    # no exec into a frozen container; a second pause is refused
    assert host.minirun("exec", "p", "true").returncode == 125
    assert host.minirun("pause", "p").returncode == 125
    host.minirun("unpause", "p", check=True)
    assert status(host, "p") == "running"
    assert open(f"{freezer}/freezer.state").read().strip() == "THAWED"
    assert host.minirun("unpause", "p").returncode == 125
    assert host.minirun("exec", "p", "true").returncode == 0
    # stop, kill and rm -f of a paused container thaw it first
    host.minirun("pause", "p", check=True)
    host.minirun("stop", "-t", "0", "p", check=True)
    assert status(host, "p") == "exited"
    detach(host, "k", "sleep", "1000")
    host.minirun("pause", "k", check=True)
    host.minirun("kill", "k", check=True)
    assert host.minirun("wait", "k", check=True).stdout == "137\n"
    detach(host, "f", "sleep", "1000")
    host.minirun("pause", "f", check=True)
    host.minirun("rm", "-f", "f", "k", "p", check=True)


def test_exec_detached_runs_on_after_the_cli_returns(host):
    detach(host, "e", "sleep", "1000")
    res = host.minirun("exec", "-d", "e", "sh", "-c", "echo $$ > /tmp/pid; exec sleep 999")
    assert res.returncode == 0 and res.stdout == ""
    out = host.minirun("exec", "e", "sh", "-c",
                       "while [ ! -s /tmp/pid ]; do sleep 0.01; done; ps -o pid,args",
                       check=True).stdout
    assert "sleep 999" in out
    assert host.minirun("exec", "-d", "e", "nope").returncode == 127
    assert host.minirun("exec", "-d", "-t", "e", "true").returncode == 125
    host.minirun("rm", "-f", "e", check=True)
