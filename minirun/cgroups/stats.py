"""`minirun stats`: Docker's table of a container's CPU, memory, network, block I/O and
processes, from its cgroup's own counters and its veth's."""
from __future__ import annotations

import time

from . import group

COLUMNS = ("CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
           "BLOCK I/O", "PIDS")


def host_memory() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _net(c) -> tuple[int, int] | None:
    """(received, sent) as the container sees them: the host end's counters swapped."""
    veth = c.network.veth if c.network else None
    if not veth:
        return None
    base = f"/sys/class/net/{veth}/statistics"
    try:
        with open(f"{base}/rx_bytes") as f:
            host_rx = int(f.read())
        with open(f"{base}/tx_bytes") as f:
            host_tx = int(f.read())
    except OSError:
        return None
    return host_tx, host_rx


def sample(c) -> dict:
    g = group(c)
    s = {"cpu_ns": None, "mem_usage": None, "mem_limit": None, "pids": None,
         "blk_read": None, "blk_write": None}
    if g is not None:
        try:
            s = g.stats()
        except OSError:
            pass
    s["net"] = _net(c)
    s["t"] = time.monotonic()
    return s


def _scaled(n: float, step: int, units: tuple[str, ...]) -> str:
    i = 0
    while n >= step and i < len(units) - 1:
        n /= step
        i += 1
    return f"{n:.4g}{units[i]}"


def human_size(n: float) -> str:
    """Docker's units.HumanSize: decimal, 4 significant digits (1.23kB, 45.6MB)."""
    return _scaled(n, 1000, ("B", "kB", "MB", "GB", "TB", "PB"))


def bytes_size(n: float) -> str:
    """Docker's units.BytesSize: binary (1.5MiB / 23.54GiB)."""
    return _scaled(n, 1024, ("B", "KiB", "MiB", "GiB", "TiB", "PiB"))


def row(c, before: dict | None, now: dict, host_mem: int) -> dict:
    """One container's line, with Docker's keys (`docker stats --format json`)."""
    cpu = "--"
    if before and before.get("cpu_ns") is not None and now.get("cpu_ns") is not None:
        wall = (now["t"] - before["t"]) * 1e9
        if wall > 0:
            cpu = f"{max(0, now['cpu_ns'] - before['cpu_ns']) / wall * 100:.2f}%"
    usage, limit = now.get("mem_usage"), now.get("mem_limit") or host_mem
    if usage is None:
        mem, memp = "-- / --", "--"
    else:
        mem = f"{bytes_size(usage)} / {bytes_size(limit)}"
        memp = f"{usage / limit * 100:.2f}%" if limit else "--"
    net = now.get("net")
    netio = f"{human_size(net[0])} / {human_size(net[1])}" if net else "0B / 0B"
    if now.get("blk_read") is None:
        blk = "--"
    else:
        blk = f"{human_size(now['blk_read'])} / {human_size(now['blk_write'])}"
    pids = "--" if now.get("pids") is None else str(now["pids"])
    return {"ID": c.short_id(), "Container": c.short_id(), "Name": c.name, "CPUPerc": cpu,
            "MemUsage": mem, "MemPerc": memp, "NetIO": netio, "BlockIO": blk, "PIDs": pids}


STATS_TITLES = {"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME",
                "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
                "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}


def table(rows: list[dict]) -> list[str]:
    keys = ("ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs")
    cells = [COLUMNS] + [tuple(r[k] for k in keys) for r in rows]
    widths = [max(len(x) for x in col) for col in zip(*cells)]
    return ["   ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in cells]


def stats(paths, refs: tuple[str, ...], stream: bool, fmt: str | None, echo,
          interval: float = 1.0, first_interval: float = 0.5) -> None:
    """Print the table (or JSON lines) once, or refresh it in place every `interval`."""
    import json
    from ..state import all_containers, is_running, lookup, reload
    host_mem = host_memory()

    def containers():
        if refs:
            return [x for x in (reload(lookup(paths, r)) for r in refs) if x is not None]
        return [c for c in all_containers(paths) if is_running(c)]

    prev: dict[str, dict] = {}
    cs = containers()
    for c in cs:  # a first sample, so the first table has a CPU %
        prev[c.id] = sample(c)
    time.sleep(first_interval)
    while True:
        rows = []
        for c in cs:
            now = sample(c)
            rows.append(row(c, prev.get(c.id), now, host_mem))
            prev[c.id] = now
        if fmt == "json":
            out = [json.dumps(r) for r in rows]
        elif fmt and fmt != "table":  # a --format template (docker_view.py)
            from ..docker_view import Row, render_rows
            out = render_rows(fmt, [Row(r) for r in rows], fmt, STATS_TITLES)
        else:
            out = table(rows)
        if stream and fmt != "json":
            echo("\033[2J\033[H" + "\n".join(out))
        else:
            echo("\n".join(out))
        if not stream:
            return
        time.sleep(interval)
        cs = containers()
