"""Graded runs in which the student's code cannot touch its own grade.

The problem: a test runner that imports the submitted code runs it in its own
process, so the code can rewrite the report, patch pytest or ``node:test``,
exit 0 after printing a fake summary, or read the tests for the expected
values. Here the verdict and the code are split by a process boundary:

- The **runner** (pyrunner.py / noderunner.js, started through nodelaunch.py)
  collects the tests in its own process. It is non-dumpable (prctl, or an
  execute-only copy of node), so no process of the same uid can ptrace it or
  open its /proc/<pid>/{mem,fd,environ}; it never loads anything from a
  student-writable place once the code may have run.
- The **student's process** is started by the runner only after the tests were
  collected and deleted, through jail.py: a new session, nothing but a socket
  to the runner (fd 3), and a seccomp filter against signalling, ptracing or
  prlimit-ing any process older than itself (the runner, the agent). It runs
  the host (pyhost.py / nodehost.js), which imports the submission and answers
  calls; tests see a proxy module whose functions forward calls with values
  copied as JSON (wire.py / nodewire.js).
- The **verdict** is one JSON document (``grading.parse_outcomes``) that the
  runner writes to fd 3, a pipe the agent reads and the student's process
  never holds. A run cut short writes none (or ``complete: false``): no grade.

Everything here runs inside the sandbox (stdlib Python, Node 18); the plan
ships these files with each graded job (``grader_files``), so the run image
needs no rebuild when they change.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

from ..job import JobError

HERE = Path(__file__).resolve().parent
#: Where the agent writes the harness and the tests of a graded run (0700; deleted by the
#: runner before the student's code starts).
GRADER_DIR = "/tmp/.grader"
TESTS_DIR = f"{GRADER_DIR}/tests"
#: The report descriptor: the agent passes the write end of a pipe there, to the runner only.
REPORT = "/dev/fd/3"
HARNESS = (
    "wire.py",
    "jail.py",
    "pyhost.py",
    "pyrunner.py",
    "nodelaunch.py",
    "nodewire.js",
    "nodehost.js",
    "noderunner.js",
    "reporter.mjs",
)


@functools.cache
def _sources() -> dict[str, str]:
    try:
        sources = {name: (HERE / name).read_text(encoding="utf-8") for name in HARNESS}
    except OSError as exc:  # an install without the package data (the .js/.mjs files)
        raise JobError(
            f"graded runs are unavailable: the grading harness is missing ({exc})"
        ) from exc
    sources["pytest.ini"] = "[pytest]\n"
    return sources


def placed_test(path: str) -> str:
    """Where a test file of the job is written in the container."""
    return f"{TESTS_DIR}/{path}"


def grader_files(tests: Mapping[str, str]) -> dict[str, str]:
    """The private files of a graded run: the harness, and the tests under ``TESTS_DIR``."""
    files = {f"{GRADER_DIR}/{name}": text for name, text in _sources().items()}
    files.update({placed_test(path): text for path, text in tests.items()})
    return files


__all__ = ["GRADER_DIR", "REPORT", "TESTS_DIR", "grader_files", "placed_test"]
