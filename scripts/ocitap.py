"""TAP reading and the summary table of scripts/oci-validation (pure functions, no I/O).

The runtime-tools validation programs print TAP version 13 (github.com/mndrix/tap-go):
`ok N - text`, `not ok N - text`, `ok N # SKIP why`, `# comment` lines, an indented
YAML block after a test, and the plan `1..N`. Some quirks decide the rules here:
- a test's description may hold a newline (`ok 1 - text` then `Refer to: URL`): a line
  that is no TAP continues the test line above it;
- a program may print two streams one after the other (`TAP version 13` twice, each with
  its plan): the plans add up;
- the hook programs (hooks, prestart, poststart...) print only `1..0` when all went well
  and, when not, a YAML block with an "error" at top level, under no test line. So a
  top-level YAML block with an "error" counts as one failure, and a program that ran no
  test line, finished and reported no error counts as one pass (`1..0 # SKIP why`: one
  skip);
- a program that aborts (util.Fatal: exit 1, often before any TAP) or times out has not
  finished: it counts as one failure more, as node-tap counts it, so that totals never
  hide a crash.
"""
from __future__ import annotations

import re

_TEST = re.compile(r"^(not )?ok\b\s*(\d+)?\s*(?:-\s*)?([^#]*?)\s*(?:#\s*(.*))?$")
_PLAN = re.compile(r"^1\.\.(\d+)\s*(?:#\s*(.*))?$")
_ERROR = re.compile(r"""^["']?error["']?\s*:\s*(.*?),?$""")
DETAIL_LINES = 6   # YAML or comment lines kept after a failing test


def parse_tap(text: str) -> dict:
    """Count one program's TAP output: pass, fail, skip, todo, plans, and the failures.

    A `# SKIP` directive counts as skip whatever the ok/not ok; `not ok # TODO` counts as
    todo (an expected failure), `ok # TODO` as pass. Each failure keeps its `not ok` line
    and the first lines of the YAML block or `#` comments under it. A YAML block under no
    test that holds an "error" is a failure of its own ("diagnostic: ...").
    """
    r = {"pass": 0, "fail": 0, "skip": 0, "todo": 0, "planned": None, "ran": 0,
         "bail": None, "plan_skip": None, "failures": []}
    current = None      # the failure whose YAML/comment lines may follow
    orphan = None       # lines of a YAML block under no test line
    after_test = False  # the last non-indented line was a test line (or its comments)
    for raw in text.splitlines():
        line = raw.rstrip()
        indented = raw[:1] in (" ", "\t")
        if indented and line.strip():
            text_ = line.strip()
            if current is not None:
                if len(current["detail"]) < DETAIL_LINES and text_ not in ("---", "...", "{", "}"):
                    current["detail"].append(text_)
            elif not after_test:
                if text_ == "---":
                    orphan = []
                elif text_ == "..." and orphan is not None:
                    _orphan_error(r, orphan)
                    orphan = None
                elif orphan is not None:
                    orphan.append(text_)
            continue
        if orphan is not None:   # a block closed by a non-indented line, not by "..."
            _orphan_error(r, orphan)
            orphan = None
        if line.startswith("#"):
            if current is not None and len(current["detail"]) < DETAIL_LINES:
                current["detail"].append(line.lstrip("#").strip())
            continue
        m = _TEST.match(line)
        if m:
            r["ran"] += 1
            current = None
            after_test = True
            directive = (m.group(4) or "").strip()
            word = directive.split(None, 1)[0].upper() if directive else ""
            if word.startswith("SKIP"):
                r["skip"] += 1
            elif word == "TODO":
                r["todo" if m.group(1) else "pass"] += 1
            elif m.group(1):
                r["fail"] += 1
                current = {"test": line, "detail": []}
                r["failures"].append(current)
            else:
                r["pass"] += 1
            continue
        m = _PLAN.match(line)
        if m or line.startswith("TAP version"):
            current = None
            after_test = False
        if m:
            r["planned"] = (r["planned"] or 0) + int(m.group(1))
            if m.group(2) and m.group(2).strip().upper().startswith("SKIP"):
                r["plan_skip"] = m.group(2).strip()
            continue
        if line.startswith("Bail out!"):
            r["bail"] = line[len("Bail out!"):].strip() or "bail out"
        # any other line continues the test line above: descriptions with a newline
        # ("...\nRefer to: https://...") are printed as they are
    if orphan is not None:
        _orphan_error(r, orphan)
    return r


def _orphan_error(r: dict, lines: list[str]) -> None:
    for ln in lines:
        m = _ERROR.match(ln)
        if m:
            msg = m.group(1).strip().strip('"').split("\\n")[0]
            r["fail"] += 1
            r["failures"].append({"test": f"diagnostic: {msg}",
                                  "detail": [x for x in lines if x not in ("{", "}")][:DETAIL_LINES]})
            return


def summarize(tap_text: str, returncode: int | None, timed_out: bool = False,
              stderr: str = "") -> dict:
    """One program's result: the TAP counts plus a status that says whether it finished.

    status is "ok", or why not: "timeout", "exit N", "no plan", "planned N, ran M",
    "bail out: ...". When it is not "ok" the program counts one failure more.
    """
    r = parse_tap(tap_text)
    if timed_out:
        status = "timeout"
    elif r["bail"]:
        status = f"bail out: {r['bail']}"
    elif returncode not in (0, None):
        status = f"exit {returncode}"
    elif r["planned"] is None:
        status = "no plan"
    elif r["planned"] != r["ran"]:
        status = f"planned {r['planned']}, ran {r['ran']}"
    else:
        status = "ok"
    if status != "ok":
        r["fail"] += 1
        head = [ln.strip()[:300] for ln in stderr.splitlines() if ln.strip()][:3]
        r["failures"].append({"test": f"program did not finish: {status}", "detail": head})
    elif r["ran"] == 0 and r["fail"] == 0:
        r["skip" if r["plan_skip"] else "pass"] += 1   # its one result is that it finished
    r["status"] = status
    return r


def totals(programs: dict) -> dict:
    """Sum pass/fail/skip/todo over {program: result}; count the programs not "ok"."""
    t = {"pass": 0, "fail": 0, "skip": 0, "todo": 0, "unfinished": 0}
    for res in programs.values():
        for k in ("pass", "fail", "skip", "todo"):
            t[k] += res.get(k, 0)
        t["unfinished"] += res.get("status", "ok") != "ok"
    return t


def table(results: dict, runtimes: list[str]) -> str:
    """One text table: a row per program, pass/fail/skip columns per runtime, totals.

    results: {runtime: {program: summarize(...)}}. A program that did not finish is
    marked with `!` after its fail count; a program not run for a runtime shows `-`.
    """
    progs = sorted({p for rt in runtimes for p in results.get(rt, {})})
    w = max([len("unfinished (!)")] + [len(p) for p in progs])
    cw = 17
    head1 = " " * w + "".join(f"  {rt[:cw]:>{cw}}" for rt in runtimes)
    head2 = f"{'program':<{w}}" + "".join(f"  {'pass fail skip':>{cw}}" for _ in runtimes)

    def cell(res):
        if res is None:
            return f"  {'-':>{cw}}"
        mark = "!" if res.get("status", "ok") != "ok" else " "
        return f"  {res['pass']:>6}{res['fail']:>5}{mark}{res['skip']:>5}"

    lines = [head1, head2, "-" * len(head2)]
    for p in progs:
        lines.append(f"{p:<{w}}" + "".join(cell(results.get(rt, {}).get(p)) for rt in runtimes))
    lines.append("-" * len(head2))
    tots = {rt: totals(results.get(rt, {})) for rt in runtimes}
    lines.append(f"{'total':<{w}}" + "".join(
        f"  {t['pass']:>6}{t['fail']:>5} {t['skip']:>5}" for t in tots.values()))
    lines.append(f"{'unfinished (!)':<{w}}" + "".join(
        f"  {t['unfinished']:>{cw}}" for t in tots.values()))
    return "\n".join(lines)
