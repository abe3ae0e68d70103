"""The per-phase breakdown of one `minirun run --rm` (scripts/bench --profile).

minirun writes `MONOTONIC_NS PID LABEL` at each phase mark when MINIRUN_PHASES=FILE
is set (minirun/faults.py: phase() and every crash point), from the minirun process
and from the container's PID 1 until its exec. CLOCK_MONOTONIC is one clock for
every process, so the bench's own reading just before it starts minirun and just
after minirun is reaped frame the marks: nothing of the start is left out.
"""
from __future__ import annotations

import statistics

# (title, from mark, to mark): consecutive intervals of the start, in order; marks
# "<start>" and "<end>" are the bench's own readings. A mark of the container's PID 1
# is prefixed "child: ".
PHASES = (
    ("interpreter start-up, site, minirun's entry", "<start>", "main"),
    ("imports of the run path", "main", "imports"),
    ("validation of the options (rootfs, ports, user...)", "imports", "validated"),
    ("firewall intact check (heal.py)", "validated", "firewall checked"),
    ("preflight: name free, network driver ready", "firewall checked", "preflight"),
    ("record created (staging dir, rename, name)", "preflight", "record created"),
    ("cgroup created (journal step cg.create)", "record created", "cgroup created"),
    ("network prepared: address lease, host ports", "cgroup created", "network prepared"),
    ("/etc files (hostname, hosts, resolv.conf)", "network prepared", "etc written"),
    ("the bundle: mount plan, seccomp program, config.json as a dict", "etc written",
     "child planned"),
    ("config.json written, parsed and checked (oci/config.py)", "child planned",
     "bundle parsed"),
    ("OCI state dir and fifos, fork into the new PID namespace", "bundle parsed",
     "forked"),
    ("namespaces unshared, lo up (PID 1)", "forked", "namespaces ready"),
    ("state and GO sent (cgroup v2: PID 1 moved first)", "namespaces ready", "go sent"),
    ("network attached: bridge, netns name, veth, firewall", "go sent",
     "network attached"),
    ("wait: PID 1 ready (its mounts, pivot_root, the lookup)", "network attached",
     "ready"),
    ("start: the exec fifo, capabilities, seccomp, execve", "ready", "exec confirmed"),
    ("the command runs and exits", "exec confirmed", "exited"),
    ("teardown (--rm): firewall, links, netns, leases, cgroup, record", "exited",
     "torn down"),
    ("interpreter exit", "torn down", "<end>"),
)
# what runs beside the parent's phases (PID 1's own work, journal steps)
BESIDE = (
    ("PID 1: mounts, pivot_root (beside the attach)", "child: go received",
     "child: mounted, pivoted"),
    ("  net.bridge (bridge exists / is made)", "  intent:net.bridge", "  done:net.bridge"),
    ("  net.netns (the namespace's name)", "  intent:net.netns", "  done:net.netns"),
    ("  net.veth (veth pair, addresses, routes)", "  intent:net.veth", "  done:net.veth"),
    ("  net.fw (nftables: the container's elements)", "  intent:net.fw", "  done:net.fw"),
    ("  teardown: firewall rules + links (parallel)", "  net undo: rules+links start",
     "  net undo: rules+links done"),
    ("  teardown: cgroup", "undone: net", "undone: cg"),
)


def read_marks(path: str) -> dict[str, int]:
    """The first time each mark was reached, in ns (a label seen twice keeps the first)."""
    marks: dict[str, int] = {}
    with open(path) as f:
        for line in f:
            t, _pid, label = line.rstrip("\n").split(" ", 2)
            marks.setdefault(label, int(t))
    return marks


def breakdown(runs: list[tuple[int, int, dict[str, int]]]) -> list[tuple[str, float | None]]:
    """runs: (start ns, end ns, marks) per run -> (title, median ms) per phase; then the
    total, then the phases beside. A phase whose marks a run lacks is left out of that
    run's median (None when no run had it)."""
    def med(a: str, b: str) -> float | None:
        vals = []
        for start, end, marks in runs:
            m = dict(marks, **{"<start>": start, "<end>": end})
            if a in m and b in m:
                vals.append((m[b] - m[a]) / 1e6)
        return statistics.median(vals) if vals else None

    rows = [(title, med(a, b)) for title, a, b in PHASES]
    rows.append(("total (whole process)", med("<start>", "<end>")))
    rows += [(title, med(a, b)) for title, a, b in BESIDE]
    return rows
