"""``opencode-live course validate|load PATH``: check a course folder, then load it.

The argument parsing, the settings and the database come from ``server/cli.py``
(``progress`` never imports ``server``): it passes the executor's language
names and, for ``load``, a way to open the store. Validation always runs
first, so an invalid course never starts a database.

Exit codes, as ``demo validate``: 0 done, 1 the course is invalid (or the
database failed), 2 a usage error (no such folder, no course.yaml in it).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TextIO

import asyncpg

from store import Store, StoreError

from .course import COURSE_FILE, Course, check_course, course_folder
from .loader import load_course

OpenStore = Callable[[], AbstractAsyncContextManager[Store]]


def _usage_error(path: str) -> str | None:
    folder = course_folder(path)
    if not folder.is_dir():
        return f"no such course folder: {path}"
    if not (folder / COURSE_FILE).is_file():
        return f"not a course folder (no {COURSE_FILE}): {path}"
    return None


def _check(
    command: str, path: str, languages: Collection[str] | None, out: TextIO, err: TextIO
) -> Course | int:
    """The checked course, or the exit code after printing why there is none."""
    usage = _usage_error(path)
    if usage is not None:
        print(f"opencode-live course {command}: {usage}", file=err)
        return 2
    course, problems = check_course(Path(path), languages=languages)
    if course is None:
        for problem in problems:
            print(problem, file=out)
        print(f"{path}: {len(problems)} problem(s)", file=err)
        return 1
    return course


def _outline(course: Course) -> str:
    lessons = sum(1 for _ in course.lessons())
    exercises = list(course.exercises())
    points = sum(e.points for e in exercises)
    return (
        f"course {course.id}: {len(course.modules)} modules, {lessons} lessons, "
        f"{len(exercises)} exercises, {points} points"
    )


def validate_command(
    path: str,
    languages: Collection[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print ``ok: PATH (...)`` or one ``file:line: field: message`` line per problem."""
    out = out or sys.stdout
    err = err or sys.stderr
    checked = _check("validate", path, languages, out, err)
    if isinstance(checked, int):
        return checked
    print(f"ok: {path} ({_outline(checked)})", file=out)
    return 0


async def load_command(
    path: str,
    open_store: OpenStore,
    languages: Collection[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Validate, then load into the store ``open_store`` opens; print what changed."""
    out = out or sys.stdout
    err = err or sys.stderr
    checked = _check("load", path, languages, out, err)
    if isinstance(checked, int):
        return checked
    try:
        async with open_store() as store:
            report = await load_course(store, checked)
    except (StoreError, asyncpg.PostgresError) as exc:
        print(f"opencode-live course load: {path}: not loaded: {exc}", file=err)
        return 1
    state = "loaded" if report.changed else "already up to date"
    print(f"{path}: course {checked.id} {state}", file=out)
    for line in report.summary():
        print(f"  {line}", file=out)
    return 0
