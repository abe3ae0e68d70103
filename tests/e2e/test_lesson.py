"""scripts/lesson --auto runs the whole lesson in a throwaway host of its own, to the end,
and leaves nothing behind on the machine that ran it."""
import os
import subprocess

from harness import PROJECT


def _state() -> dict:
    mounts = open("/proc/self/mountinfo").read()
    return {
        "lesson dirs": sorted(d for d in os.listdir("/tmp") if d.startswith("minirun-lesson-")),
        "netns mounts": mounts.count(" /run/netns/"),
        "overlays": mounts.count(" overlay "),
        "monitors": subprocess.run(["pgrep", "-f", "minirun-lesson-"], capture_output=True,
                                   text=True).stdout.split(),
        "links": subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout,
    }


def test_lesson_runs_to_the_end_and_leaves_nothing():
    before = _state()
    res = subprocess.run([str(PROJECT / "scripts" / "lesson"), "--auto"], capture_output=True,
                         text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout
    # the lesson's own claims, seen in its output
    assert "you are 198.51.100.1" in out        # masqueraded egress: the LAN host sees the host
    assert "hello from blue" in out              # port forwarding from the LAN host
    assert "you are 198.51.100.2" in out         # routed: blue sees the LAN host's own address
    assert "Done." in out
    assert _state() == before
