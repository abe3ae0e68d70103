"""Unit tests of scripts/ocitap.py: the TAP reading and table of scripts/oci-validation,
on canned output shaped like the runtime-tools validation programs' (no runtime run)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.dont_write_bytecode = True   # no __pycache__ in scripts/
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import ocitap  # noqa: E402

DEFAULT = """TAP version 13
ok 1 - has expected hostname
  ---
  {
    "actual": "mrsdalloway",
    "expected": "mrsdalloway"
  }
  ...
not ok 2 - memory kernel is set correctly
# expect: 50593792, actual: 9223372036854771712
not ok 3 - create MUST create a new container
  ---
  {
    "error": "exit status 1",
    "stderr": "cgroups in hybrid mode not supported\\n"
  }
  ...
ok 4 # SKIP linux.gidMappings not set
ok 5 - has expected soft RLIMIT_NOFILE # skip not supported
not ok 6 - flaky thing # TODO known
ok 7 - later fixed # TODO known
1..7
"""


def test_counts_and_failure_details():
    r = ocitap.parse_tap(DEFAULT)
    assert (r["pass"], r["fail"], r["skip"], r["todo"]) == (2, 2, 2, 1)
    assert (r["planned"], r["ran"]) == (7, 7)
    assert [f["test"] for f in r["failures"]] == [
        "not ok 2 - memory kernel is set correctly",
        "not ok 3 - create MUST create a new container"]
    assert r["failures"][0]["detail"] == ["expect: 50593792, actual: 9223372036854771712"]
    assert r["failures"][1]["detail"] == ['"error": "exit status 1",',
                                          '"stderr": "cgroups in hybrid mode not supported\\n"']


def test_finished_program_status_ok():
    s = ocitap.summarize(DEFAULT, 0)
    assert s["status"] == "ok" and (s["pass"], s["fail"], s["skip"]) == (2, 2, 2)


def test_abort_before_any_tap_counts_one_failure():
    s = ocitap.summarize("", 1, stderr="failed to create the container\nexit status 1\n")
    assert s["status"] == "exit 1"
    assert (s["pass"], s["fail"], s["skip"]) == (0, 1, 0)
    assert s["failures"][-1] == {"test": "program did not finish: exit 1",
                                 "detail": ["failed to create the container",
                                            "exit status 1"]}


def test_timeout_missing_plan_and_short_run():
    assert ocitap.summarize("TAP version 13\nok 1 - a\n", None, timed_out=True)["status"] == "timeout"
    s = ocitap.summarize("TAP version 13\nok 1 - a\n", 0)
    assert s["status"] == "no plan" and (s["pass"], s["fail"]) == (1, 1)
    s = ocitap.summarize("TAP version 13\nok 1 - a\n1..3\n", 0)
    assert s["status"] == "planned 3, ran 1"
    s = ocitap.summarize("TAP version 13\nok 1\nBail out! no cgroup\n1..1\n", 0)
    assert s["status"] == "bail out: no cgroup"


def test_description_with_a_newline_keeps_its_yaml():
    text = """TAP version 13
ok 1 - state MUST generate an error if it is not provided the ID of a container
Refer to: https://github.com/opencontainers/runtime-spec/blob/v1.1.0/runtime.md#query-state
  ---
  {
    "error": "exit status 1"
  }
  ...
not ok 2 - state MUST return the state
Refer to: https://example.invalid/state
  ---
  {
    "error": "wrong status"
  }
  ...
1..2
"""
    s = ocitap.summarize(text, 0)
    assert (s["pass"], s["fail"], s["status"]) == (1, 1, "ok")
    assert s["failures"][0]["detail"] == ['"error": "wrong status"']


def test_two_streams_add_their_plans():
    # linux_cgroups_cpus prints a stream of 112 tests, then another `TAP version 13 / 1..0`
    text = "TAP version 13\n" + "".join(f"ok {i} - x\n" for i in range(1, 4)) + \
        "1..3\nTAP version 13\n1..0\n"
    s = ocitap.summarize(text, 0)
    assert s["status"] == "ok" and (s["pass"], s["fail"]) == (3, 0)


def test_hook_programs_report_errors_as_top_level_yaml():
    bad = """TAP version 13
  ---
  {
    "error": "Hooks MUST be called in the listed order\\nRefer to: https://x",
    "stderr": "boom"
  }
  ...
1..0
"""
    s = ocitap.summarize(bad, 0)
    assert s["status"] == "ok" and (s["pass"], s["fail"], s["skip"]) == (0, 1, 0)
    assert s["failures"][0]["test"] == "diagnostic: Hooks MUST be called in the listed order"
    good = ocitap.summarize("TAP version 13\n1..0\n", 0)
    assert (good["pass"], good["fail"], good["skip"]) == (1, 0, 0)
    skipped = ocitap.summarize("TAP version 13\n1..0 # SKIP no hugetlb\n", 0)
    assert (skipped["pass"], skipped["fail"], skipped["skip"]) == (0, 0, 1)
    # a YAML block under a passing test is its diagnostic, not a failure
    ok_yaml = "TAP version 13\nok 1 - a\n  ---\n  {\n    \"error\": \"expected\"\n  }\n  ...\n1..1\n"
    assert ocitap.summarize(ok_yaml, 0)["fail"] == 0


def test_table_and_totals():
    results = {
        "runc": {"default": ocitap.summarize(DEFAULT, 0),
                 "hooks": ocitap.summarize("", 1)},
        "crun": {"default": ocitap.summarize(DEFAULT, 0)},
    }
    assert ocitap.totals(results["runc"]) == {"pass": 2, "fail": 3, "skip": 2, "todo": 1,
                                              "unfinished": 1}
    lines = ocitap.table(results, ["runc", "crun"]).splitlines()
    assert lines[0].split() == ["runc", "crun"]
    assert lines[1].split() == ["program"] + ["pass", "fail", "skip"] * 2
    rows = {ln.split()[0]: ln for ln in lines[3:] if ln and not ln.startswith("-")}
    assert rows["default"].split() == ["default", "2", "2", "2", "2", "2", "2"]
    assert rows["hooks"].split() == ["hooks", "0", "1!", "0", "-"]
    assert rows["total"].split() == ["total", "2", "3", "2", "2", "2", "2"]
    assert rows["unfinished"].split() == ["unfinished", "(!)", "1", "0"]
    assert len({len(ln) for ln in lines}) == 1   # the columns line up
