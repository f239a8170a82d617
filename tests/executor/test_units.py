"""The executor's pure parts, without Docker: report parsers, language specs, job checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from executor import Job, JobError, Limits
from executor.engine import Shape
from executor.grading import ReportError, parse_junit, parse_report, parse_tap, score
from executor.languages import LanguageSpecError, load_languages, parse_spec
from executor.plan import make_plan

NODE_TAP = """TAP version 13
# Subtest: adds
ok 1 - adds
  ---
  duration_ms: 0.922234
  ...
# Subtest: fails
not ok 2 - fails
  ---
  duration_ms: 0.770199
  location: '/work/t.test.js:3:1'
  failureType: 'testCodeFailure'
  error: 'math is broken'
  code: 'ERR_ASSERTION'
  stack: |-
    TestContext.<anonymous> (/work/t.test.js:3:30)
  ...
# Subtest: group
    # Subtest: inner ok
    ok 1 - inner ok
      ---
      duration_ms: 0.119497
      ...
    # Subtest: inner bad
    not ok 2 - inner bad
      ---
      duration_ms: 0.120699
      failureType: 'testCodeFailure'
      error: |-
        boom
        line2
      code: 'ERR_TEST_FAILURE'
      ...
    1..2
not ok 3 - group
  ---
  duration_ms: 0.694658
  type: 'suite'
  failureType: 'subtestsFailed'
  error: '1 subtest failed'
  ...
# Subtest: it''s \\# special
ok 4 - it's \\# special # SKIP not today
  ---
  duration_ms: 0.1
  ...
1..4
# tests 5
"""

PYTEST_JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="5">
<testcase classname="test_calc" name="test_add" file="test_calc.py" line="2" time="0.001" />
<testcase classname="test_calc" name="test_sub" file="test_calc.py" line="5" time="0.001">
<failure message="AssertionError: sub is wrong&#10;assert 8 == 2">long text</failure></testcase>
<testcase classname="test_calc.TestBox" name="test_in_class" file="test_calc.py" time="0" />
<testcase classname="test_calc" name="test_skip" file="test_calc.py" time="0">
<skipped type="pytest.skip" message="not yet">skip</skipped></testcase>
<testcase classname="" name="tests.test_broken" time="0">
<error message="collection failure">ImportError: nope</error></testcase>
</testsuite></testsuites>
"""


def test_tap_from_node_test() -> None:
    outcomes = parse_tap(NODE_TAP)
    assert [(o.name, o.passed, o.message) for o in outcomes] == [
        ("adds", True, ""),
        ("fails", False, "math is broken"),
        ("group > inner ok", True, ""),
        ("group > inner bad", False, "boom"),
        ("it's # special", False, "skipped"),
    ]
    assert score(outcomes) == pytest.approx(2 / 5)


def test_tap_of_a_file_that_failed_to_load_counts_as_one_failure() -> None:
    tap = (
        "TAP version 13\n# Subtest: /work/x.test.js\nnot ok 1 - /work/x.test.js\n  ---\n"
        "  error: 'test failed'\n  ...\n1..1\n"
    )
    assert [(o.name, o.passed) for o in parse_tap(tap)] == [("x.test.js", False)]


def test_junit_from_pytest() -> None:
    outcomes = parse_junit(PYTEST_JUNIT)
    assert [(o.name, o.passed, o.message) for o in outcomes] == [
        ("test_calc.py::test_add", True, ""),
        ("test_calc.py::test_sub", False, "AssertionError: sub is wrong"),
        ("test_calc.py::TestBox::test_in_class", True, ""),
        ("test_calc.py::test_skip", False, "skipped: not yet"),
        ("tests.test_broken", False, "collection failure"),
    ]


def test_unreadable_reports() -> None:
    with pytest.raises(ReportError, match="not valid XML"):
        parse_report("junit", "<testsuite><testcase")
    with pytest.raises(ReportError, match="empty"):
        parse_report("tap", "   ")
    with pytest.raises(ReportError, match="unknown report format"):
        parse_report("xml2", "x")
    assert score([]) == 0.0


def test_builtin_languages() -> None:
    specs = load_languages()
    assert set(specs) == {"python", "javascript"}
    py = specs["python"]
    assert py.entry == "main.py" and py.run == ("python3", "{entry}")
    # graded through the graders' runners (executor/graders/), which report "outcomes"
    assert py.test is not None and py.test.report == "outcomes"
    assert "/tmp/.grader/pyrunner.py" in py.test.command
    js = specs["javascript"]
    assert js.test is not None and js.test.report == "outcomes"
    assert "/tmp/.grader/nodelaunch.py" in js.test.command


def test_a_language_is_one_file(tmp_path: Path) -> None:
    (tmp_path / "go.json").write_text(
        json.dumps(
            {
                "name": "go",
                "image": "example/go-runner:1",
                "entry": "main.go",
                "extensions": [".go"],
                "run": ["go", "run", "{entry}"],
                "env": {"GOCACHE": "/tmp/go-cache"},
                "test": {"command": ["go-junit", "{report}", "{tests}"], "report": "junit"},
            }
        )
    )
    specs = load_languages(tmp_path)
    assert set(specs) == {"python", "javascript", "go"}
    plan = make_plan(
        Job("go", {"main.go": "package main"}),
        languages=specs,
        default_image="opencode-live/runner:1",
        default_limits=Limits(),
    )
    assert plan.shape.image == "example/go-runner:1"
    assert plan.argv == ["go", "run", "main.go"]
    assert plan.env["GOCACHE"] == "/tmp/go-cache"


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"name": "x", "entry": "m.x"}, "'run' must be a list"),
        ({"name": "x", "entry": "../m", "run": ["x"]}, "'entry'"),
        ({"name": "x", "entry": "m", "run": ["x"], "colour": 1}, "unknown keys"),
        (
            {
                "name": "x",
                "entry": "m",
                "run": ["x"],
                "test": {"command": ["t"], "report": "junit"},
            },
            "{tests}",
        ),
        (
            {
                "name": "x",
                "entry": "m",
                "run": ["x"],
                "test": {"command": ["t", "{tests}"], "report": "xx"},
            },
            "test.report",
        ),
    ],
)
def test_bad_language_specs_say_what_is_wrong(spec: dict[str, object], problem: str) -> None:
    with pytest.raises(LanguageSpecError, match=problem.replace("{", r"\{").replace("}", r"\}")):
        parse_spec(spec, "x.json")


def test_plan_uses_the_configured_limits_unless_the_job_sets_its_own() -> None:
    specs = load_languages()
    configured = Limits(memory_bytes=256 * 1024 * 1024, wall_seconds=5)
    plan = make_plan(
        Job("python", {"main.py": ""}),
        languages=specs,
        default_image="img",
        default_limits=configured,
    )
    assert plan.limits == configured
    own = Limits(wall_seconds=1)
    plan = make_plan(
        Job("python", {"main.py": ""}, limits=own),
        languages=specs,
        default_image="img",
        default_limits=configured,
    )
    assert plan.limits == own
    with pytest.raises(JobError, match="bad limits: pids"):
        make_plan(
            Job("python", {"main.py": ""}, limits=Limits(pids=2)),
            languages=specs,
            default_image="img",
            default_limits=configured,
        )


def test_plan_of_a_graded_job() -> None:
    plan = make_plan(
        Job("python", {"calc.py": ""}, tests={"tests/test_b.py": "", "test_a.py": ""}),
        languages=load_languages(),
        default_image="img",
        default_limits=Limits(),
    )
    # the report is a pipe only the runner holds; the tests go to the grader's private folder
    assert plan.graded and plan.report == "/dev/fd/3"
    assert plan.argv[-2:] == ["/tmp/.grader/tests/test_a.py", "/tmp/.grader/tests/tests/test_b.py"]
    assert ["--report", "/dev/fd/3"] == plan.argv[3:5]
    assert {"calc.py", "/tmp/.grader/tests/test_a.py", "/tmp/.grader/tests/tests/test_b.py"} < set(
        plan.files
    )
    assert "/tmp/.grader/pyrunner.py" in plan.files and "test_a.py" not in plan.files
    assert all(p == "calc.py" or p.startswith("/tmp/.grader/") for p in plan.files)
    assert set(plan.env) == {
        "PATH",
        "HOME",
        "LANG",
        "PYTHONUNBUFFERED",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONIOENCODING",
    }


def test_shape_splits_the_disk_between_the_writable_places() -> None:
    shape = Shape.of("img", Limits(disk_bytes=100 * 1024 * 1024))
    tmpfs = shape.tmpfs()
    sizes = {k: int(v.split("size=")[1].split(",")[0]) for k, v in tmpfs.items()}
    assert sum(sizes.values()) == 100 * 1024 * 1024
    assert sizes["/work"] == shape.work_bytes == 50 * 1024 * 1024
    assert "exec" in tmpfs["/work"] and "noexec" in tmpfs["/dev/shm"]
