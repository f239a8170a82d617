"""Test reports of graded runs: the graders' verdict, JUnit XML (pytest), TAP (``node --test``).

The built-in languages report ``outcomes``: the JSON verdict that the test
runners of ``graders/`` write on the report descriptor (a pipe only the runner
holds; the student's code runs in another process, see graders/__init__.py).
JUnit and TAP stay for language specs that run a test tool directly.

A report comes from inside the sandbox, so it is read as untrusted text:
bounded, never executed, and a report that cannot be parsed is an error the
run's message names (not an exception out of the executor).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

from .job import TestOutcome

MAX_TESTS = 1000
MAX_MESSAGE = 500


class ReportError(ValueError):
    """The test runner's report is missing or unreadable."""


def _short(text: str | None, default: str = "") -> str:
    text = (text or "").strip()
    if not text:
        return default
    first = text.splitlines()[0].strip()
    return first if len(first) <= MAX_MESSAGE else first[: MAX_MESSAGE - 1] + "…"


def parse_junit(text: str) -> list[TestOutcome]:
    """pytest's ``--junitxml`` (xunit1 or xunit2): one outcome per ``testcase``."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        # pytest writes neither; refusing them rules out entity expansion bombs
        raise ReportError("the JUnit report has a DOCTYPE or entities; refused")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ReportError(f"the JUnit report is not valid XML ({exc})") from exc
    outcomes: list[TestOutcome] = []
    for case in root.iter("testcase"):
        name = case.get("name") or ""
        classname = case.get("classname") or ""
        file = case.get("file") or ""
        if file:
            module = file.removesuffix(".py").replace("/", ".")
            rest = classname[len(module) + 1 :] if classname.startswith(module + ".") else ""
            parts = [file, *([rest] if rest else []), *([name] if name else [])]
            full = "::".join(parts)
        else:
            full = ".".join(p for p in (classname, name) if p) or "(unnamed)"
        bad = None
        for tag in ("failure", "error"):
            el = case.find(tag)
            if el is not None:
                bad = _short(el.get("message"), "") or _short(el.text, tag)
                break
        skipped = case.find("skipped")
        if bad is not None:
            outcomes.append(TestOutcome(full, False, bad))
        elif skipped is not None:
            outcomes.append(
                TestOutcome(full, False, "skipped: " + _short(skipped.get("message"), "no reason"))
            )
        else:
            outcomes.append(TestOutcome(full, True, ""))
        if len(outcomes) >= MAX_TESTS:
            break
    return outcomes


_TEST_LINE = re.compile(r"^(?P<indent> *)(?P<ok>not ok|ok)\b *(?P<num>\d+)? *(?:- )?(?P<rest>.*)$")
_SUBTEST = re.compile(r"^(?P<indent> *)# Subtest: (?P<name>.*)$")
_DIRECTIVE = re.compile(r"(?<!\\) # *(SKIP|TODO)\b", re.IGNORECASE)


def _tap_unescape(name: str) -> str:
    return name.replace("\\#", "#").replace("\\\\", "\\")


def _yaml_scalar(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\n", "\n")
    return value


def parse_tap(text: str) -> list[TestOutcome]:
    """TAP 13/14 as ``node --test`` writes it: leaf tests only, named ``parent > child``.

    A test whose subtests precede it (deeper indent) is a parent (a suite or a
    test with ``t.test`` children) and is not counted itself.
    """
    lines = text.splitlines()
    entries: list[dict[str, object]] = []
    path: dict[int, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        sub = _SUBTEST.match(line)
        if sub:
            indent = len(sub["indent"])
            for k in [k for k in path if k >= indent]:
                del path[k]
            path[indent] = _tap_unescape(sub["name"].strip())
            i += 1
            continue
        m = _TEST_LINE.match(line)
        if not m:
            i += 1
            continue
        indent = len(m["indent"])
        rest = m["rest"]
        directive = _DIRECTIVE.search(rest)
        skip = None
        if directive:
            skip = directive.group(1).upper()
            rest = rest[: directive.start()]
        name = _tap_unescape(rest.strip()) or f"test {m['num'] or len(entries) + 1}"
        parents = [path[k] for k in sorted(path) if k < indent]
        entry: dict[str, object] = {
            "indent": indent,
            "name": " > ".join([*parents, name]),
            "ok": m["ok"] == "ok",
            "skip": skip,
            "error": "",
            "suite": False,
        }
        i += 1
        # an optional YAML block, indented two more than the test line
        if i < len(lines) and lines[i].strip() == "---":
            block_indent = len(lines[i]) - len(lines[i].lstrip(" "))
            i += 1
            while i < len(lines) and lines[i].strip() != "...":
                raw = lines[i]
                stripped = raw.strip()
                own = len(raw) - len(raw.lstrip(" "))
                if own == block_indent and stripped.startswith("type:"):
                    entry["suite"] = _yaml_scalar(stripped[5:]) == "suite"
                elif own == block_indent and stripped.startswith("error:"):
                    value = stripped[6:].strip()
                    if value in ("|-", "|", ">-", ">", "|+"):
                        block: list[str] = []
                        i += 1
                        while i < len(lines) and (
                            len(lines[i]) - len(lines[i].lstrip(" ")) > block_indent
                            or not lines[i].strip()
                        ):
                            block.append(lines[i].strip())
                            i += 1
                        entry["error"] = "\n".join(block)
                        continue
                    entry["error"] = _yaml_scalar(value)
                i += 1
            i += 1
        # a test line right after deeper ones closes those subtests: it is their parent
        if entries and int(entries[-1]["indent"]) > indent:  # type: ignore[call-overload]
            entry["suite"] = True
        entries.append(entry)
    outcomes: list[TestOutcome] = []
    for e in entries:
        if e["suite"]:
            continue
        name = str(e["name"]).replace("/work/", "")
        if e["skip"]:
            outcomes.append(TestOutcome(name, False, "skipped" if e["skip"] == "SKIP" else "todo"))
        elif e["ok"]:
            outcomes.append(TestOutcome(name, True, ""))
        else:
            outcomes.append(TestOutcome(name, False, _short(str(e["error"]), "failed")))
        if len(outcomes) >= MAX_TESTS:
            break
    return outcomes


def parse_outcomes(text: str) -> list[TestOutcome]:
    """The graders' verdict: ``{"grader": "opencode-live", "version": 1, "complete": true,
    "tests": [{"name", "passed", "message"}]}``; one that is not complete is refused."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ReportError(f"the test verdict is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("grader") != "opencode-live":
        raise ReportError("the test verdict is not an opencode-live verdict")
    if data.get("version") != 1:
        raise ReportError(f"unknown test verdict version {data.get('version')!r}")
    if data.get("complete") is not True:
        raise ReportError("the test run was cut short before every test had an outcome")
    tests = data.get("tests")
    if not isinstance(tests, list):
        raise ReportError("the test verdict has no list of tests")
    outcomes: list[TestOutcome] = []
    for entry in tests[:MAX_TESTS]:
        if not isinstance(entry, dict):
            raise ReportError("a test in the verdict is not an object")
        name, passed, message = entry.get("name"), entry.get("passed"), entry.get("message", "")
        if not (isinstance(name, str) and isinstance(passed, bool) and isinstance(message, str)):
            raise ReportError("a test in the verdict needs a name, passed and a message")
        name = name.strip()[:MAX_MESSAGE] or "(unnamed)"
        outcomes.append(TestOutcome(name, passed, "" if passed else _short(message, "failed")))
    return outcomes


REPORT_FORMATS: dict[str, Callable[[str], list[TestOutcome]]] = {
    "outcomes": parse_outcomes,
    "junit": parse_junit,
    "tap": parse_tap,
}


def parse_report(fmt: str, text: str) -> list[TestOutcome]:
    try:
        parser = REPORT_FORMATS[fmt]
    except KeyError:
        raise ReportError(f"unknown report format {fmt!r}") from None
    if not text.strip():
        raise ReportError("the test runner wrote an empty report")
    return parser(text)


def score(outcomes: list[TestOutcome]) -> float:
    return sum(1 for o in outcomes if o.passed) / len(outcomes) if outcomes else 0.0
