"""`system prune` (Docker's), `system df`, `volume prune` and `completion` in throwaway
hosts (issue 11 item 6)."""
from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_images import docker_save, layer1  # noqa: E402

R = None


@pytest.fixture
def r(rootfs):
    return str(rootfs)


def ok(host, *args, **kw) -> str:
    return host.minirun(*args, check=True, **kw).stdout


def test_prune_removes_what_docker_removes(host, r, rootfs, tmp_path):
    docker_save(tmp_path / "a.tar", [layer1(rootfs)], "keep:1")
    ok(host, "image", "import", str(tmp_path / "a.tar"))
    image_id = ok(host, "images", "-q").split()[0]
    ok(host, "network", "create", "idle")
    ok(host, "network", "create", "busy")
    ok(host, "run", "--name", "done", r, "sh", "-c", "head -c 300000 /dev/zero > /big")
    ok(host, "run", "-d", "--name", "up", "--network", "busy", r, "sleep", "1000")
    ok(host, "volume", "create", "unused")
    ok(host, "run", "--name", "holder", "-v", "used:/v", r, "true")
    ok(host, "run", "--name", "img", "keep:1", "true")

    df = ok(host, "system", "df").splitlines()
    assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert df[1].split()[:3] == ["Images", "1", "1"]
    assert df[2].split()[:3] == ["Containers", "4", "1"]
    assert df[3].split()[:4] == ["Local", "Volumes", "2", "1"]

    # no terminal and no -f: only crash leftovers go, and it says so
    res = host.minirun("system", "prune")
    assert res.returncode == 0 and "give -f" in res.stderr
    assert len(ok(host, "ps", "-aq").split()) == 4

    out = ok(host, "system", "prune", "-f")
    ids = out.split("Deleted Containers:\n")[1].split("\n\n")[0].split()
    assert len(ids) == 3 and all(re.fullmatch(r"[0-9a-f]{64}", i) for i in ids)
    assert "Deleted Networks:\nidle\n" in out
    assert "Deleted Volumes" not in out and "Deleted Images" not in out  # tagged: kept
    m = re.search(r"Total reclaimed space: ([\d.]+)(B|kB|MB)\n$", out)
    assert m and m.group(2) in ("kB", "MB"), out  # the 300 kB written in "done"
    assert ok(host, "ps", "-aq").split() == [ok(host, "ps", "-q").strip()]
    assert "busy" in ok(host, "network", "ls") and "idle" not in ok(host, "network", "ls")

    # -a: the image no container uses any more; --volumes: both volumes now
    out = ok(host, "system", "prune", "-f", "-a", "--volumes")
    assert f"deleted: sha256:{image_id}" in out.replace("\n", " ") or \
        "untagged: keep:1" in out
    assert "Deleted Volumes:\n" in out and "unused" in out and "used" in out
    assert ok(host, "images", "-q") == "" and ok(host, "volume", "ls", "-q") == ""
    ok(host, "rm", "-f", "up")
    ok(host, "system", "prune", "-f")
    assert "busy" not in ok(host, "network", "ls")


def test_prune_prompts_on_a_terminal(host, r):
    """With a terminal and without -f, Docker's warning and [y/N] prompt; N keeps all."""
    ok(host, "run", "--name", "keepme", r, "true")
    mr = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "minirun"])
    res = host.run(["script", "-qec", f"{mr} system prune", "/dev/null"], input="n\n")
    assert "WARNING! This will remove:" in res.stdout
    assert "Are you sure you want to continue? [y/N]" in res.stdout
    assert ok(host, "ps", "-aq").strip()
    res = host.run(["script", "-qec", f"{mr} system prune", "/dev/null"], input="y\n")
    assert "Deleted Containers:" in res.stdout, res.stdout
    assert ok(host, "ps", "-aq").strip() == ""


def test_prune_still_reclaims_crash_leftovers(host, r):
    """A foreground run whose minirun was SIGKILLed mid-run leaves a container nobody
    owns; `system prune` (even without -f) reclaims it as before."""
    p = host.popen(["sh", "-c", f"exec {sys.executable} -m minirun run --name gone {r} "
                    "sleep 1000"])
    host.run("until " + shlex.join([sys.executable, "-m", "minirun", "ps", "-q"]) +
             " | grep -q .; do sleep 0.05; done", timeout=30)
    os.kill(p.pid, 9)
    p.wait()
    ok(host, "kill", "gone")
    out = ok(host, "system", "prune")
    assert "reclaimed gone" in out
    ok(host, "rm", "gone")


def complete(host, line: str) -> list[str]:
    words = line.split(" ")
    env = {"_MINIRUN_COMPLETE": "bash_complete", "COMP_WORDS": line,
           "COMP_CWORD": str(len(words) - 1)}
    res = host.run(["env", *[f"{k}={v}" for k, v in env.items()], sys.executable, "-m",
                    "minirun"], check=True)
    return [l.split(",", 1)[1] for l in res.stdout.splitlines()]


def test_completion(host, r):
    for shell in ("bash", "zsh", "fish"):
        assert "_MINIRUN_COMPLETE" in ok(host, "completion", shell)
    ok(host, "run", "--name", "web1", r, "true")
    ok(host, "network", "create", "frontnet")
    ok(host, "volume", "create", "vol1")
    assert "network" in complete(host, "minirun net")
    assert complete(host, "minirun rm we") == ["web1"]
    assert complete(host, "minirun network rm fr") == ["frontnet"]
    assert complete(host, "minirun run --network fr") == ["frontnet"]
    assert complete(host, "minirun volume inspect v") == ["vol1"]
    assert "--tmpfs" in complete(host, "minirun run --tm")
    # the bash script itself, with COMP_WORDS set as bash would
    script = ok(host, "completion", "bash")
    mr = f"{sys.executable} -m minirun"
    res = host.run(["bash", "-c", script.replace("$1)", f"{mr})") +
                    '\nCOMP_WORDS=(minirun logs w); COMP_CWORD=2; _minirun_completion minirun;'
                    ' printf "%s\\n" "${COMPREPLY[@]}"'], check=True)
    assert res.stdout.split() == ["web1"], res.stdout
    ok(host, "rm", "web1")
    ok(host, "network", "rm", "frontnet")
    ok(host, "volume", "rm", "vol1")
