"""Loading a checked course into the database: upsert, retire, never delete.

Submissions and progress reference ``lessons(id)`` and ``exercises(id)``, so a
reload must keep every id it has ever loaded: a row whose definition changed
is updated in place, a row that left the files is marked retired
(``retired_at``), a row that comes back is un-retired. Deleting and recreating
would either fail on those references or, with cascades, wipe students' work.

The whole load is one transaction, so a class never sees half a course, and
it compares before it writes: only rows that differ are touched, which makes
loading the same folder twice a no-op (no updated_at, loaded_at or version
moves). Two loads of the same course at once take turns on an advisory lock.

An exercise's ``version`` goes up by one whenever what a student is graded on
changes (instructions, language, points, starter, tests, solution); a new
title or a move to another lesson does not change it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from store import Store

from .course import Course, Exercise, Lesson, Module

Kind = Literal["course", "module", "lesson", "exercise"]
Action = Literal["added", "updated", "retired", "unchanged"]
#: A stored row, by column name.
Row = dict[str, Any]
KINDS: tuple[Kind, ...] = ("course", "module", "lesson", "exercise")
ACTIONS: tuple[Action, ...] = ("added", "updated", "retired", "unchanged")


@dataclass(frozen=True, slots=True)
class Change:
    """What a load did to one row."""

    kind: Kind
    id: str
    action: Action


@dataclass(slots=True)
class LoadReport:
    """Every row a load looked at and what it did to it."""

    course_id: str
    changes: list[Change] = field(default_factory=list)

    def count(self, action: Action, kind: Kind | None = None) -> int:
        return sum(
            1 for c in self.changes if c.action == action and (kind is None or c.kind == kind)
        )

    def ids(self, action: Action, kind: Kind | None = None) -> list[str]:
        return [
            c.id for c in self.changes if c.action == action and (kind is None or c.kind == kind)
        ]

    @property
    def added(self) -> int:
        return self.count("added")

    @property
    def updated(self) -> int:
        return self.count("updated")

    @property
    def retired(self) -> int:
        return self.count("retired")

    @property
    def unchanged(self) -> int:
        return self.count("unchanged")

    @property
    def changed(self) -> bool:
        return any(c.action != "unchanged" for c in self.changes)

    def summary(self) -> list[str]:
        """One line per kind: ``exercises: 1 added, 2 updated, 0 retired, 3 unchanged``."""
        lines = []
        for kind in KINDS[1:]:
            counts = ", ".join(f"{self.count(a, kind)} {a}" for a in ACTIONS)
            lines.append(f"{kind}s: {counts}")
        return lines


_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('opencode-live/course:' || $1, 0))"

_SELECT_COURSE = "SELECT title, description, version FROM courses WHERE id = $1"
_SELECT_MODULES = """
SELECT id, position, title, description, retired_at IS NOT NULL AS retired
FROM modules WHERE course_id = $1
"""
_SELECT_LESSONS = """
SELECT l.id, l.module_id, l.position, l.title, l.kind, l.demo_id, l.body,
       l.retired_at IS NOT NULL AS retired
FROM lessons l JOIN modules m ON m.id = l.module_id
WHERE m.course_id = $1
"""
_SELECT_EXERCISES = """
SELECT e.id, e.lesson_id, e.position, e.title, e.instructions, e.language, e.points,
       e.starter::text AS starter, e.tests::text AS tests, e.solution::text AS solution,
       e.version, e.retired_at IS NOT NULL AS retired
FROM exercises e JOIN lessons l ON l.id = e.lesson_id JOIN modules m ON m.id = l.module_id
WHERE m.course_id = $1
"""

_INSERT_COURSE = """
INSERT INTO courses (id, title, description, version, source) VALUES ($1, $2, $3, $4, $5)
"""
_UPDATE_COURSE = """
UPDATE courses SET title = $2, description = $3, version = $4, source = $5, loaded_at = now()
WHERE id = $1
"""
_UPSERT_MODULE = """
INSERT INTO modules (id, course_id, position, title, description) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (id) DO UPDATE SET position = excluded.position, title = excluded.title,
    description = excluded.description, retired_at = NULL
"""
_UPSERT_LESSON = """
INSERT INTO lessons (id, module_id, position, title, kind, demo_id, body)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (id) DO UPDATE SET position = excluded.position, title = excluded.title,
    kind = excluded.kind, demo_id = excluded.demo_id, body = excluded.body, retired_at = NULL
"""
_UPSERT_EXERCISE = """
INSERT INTO exercises (id, lesson_id, position, title, instructions, language, points,
                       starter, tests, solution, version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10::jsonb, $11)
ON CONFLICT (id) DO UPDATE SET lesson_id = excluded.lesson_id, position = excluded.position,
    title = excluded.title, instructions = excluded.instructions,
    language = excluded.language, points = excluded.points, starter = excluded.starter,
    tests = excluded.tests, solution = excluded.solution, version = excluded.version,
    retired_at = NULL
"""
_RETIRE = {
    "module": "UPDATE modules SET retired_at = now() WHERE id = ANY($1::text[])",
    "lesson": "UPDATE lessons SET retired_at = now() WHERE id = ANY($1::text[])",
    "exercise": "UPDATE exercises SET retired_at = now() WHERE id = ANY($1::text[])",
}


def _json(files: dict[str, str] | None) -> str | None:
    return None if files is None else json.dumps(files, sort_keys=True, ensure_ascii=False)


def _files(text: str | None) -> dict[str, str] | None:
    return None if text is None else json.loads(text)


class _Plan:
    """The changes one kind of row needs, worked out before anything is written."""

    def __init__(self, kind: Kind, report: LoadReport) -> None:
        self.kind: Kind = kind
        self.report = report
        self.writes: list[tuple[Any, ...]] = []

    def compare(
        self, row_id: str, existing: Row | None, wanted: dict[str, Any], row: tuple
    ) -> None:
        """Add ``row`` to the writes unless the stored row already says exactly ``wanted``."""
        if existing is None:
            action: Action = "added"
        elif existing["retired"] or any(existing[k] != v for k, v in wanted.items()):
            action = "updated"
        else:
            action = "unchanged"
        if action != "unchanged":
            self.writes.append(row)
        self.report.changes.append(Change(self.kind, row_id, action))

    def retire(self, existing: Iterable[Row], present: set[str]) -> list[str]:
        """Ids stored, not retired yet, and no longer in the files."""
        gone = sorted(r["id"] for r in existing if r["id"] not in present and not r["retired"])
        self.report.changes.extend(Change(self.kind, i, "retired") for i in gone)
        return gone


async def load_course(store: Store, course: Course) -> LoadReport:
    """Make the database hold ``course`` (already checked) in one transaction.

    Returns what was added, updated, retired and left unchanged. Raises
    ``store.StoreUnavailable`` when the database is not there, and
    ``asyncpg.PostgresError`` (the store does not wrap it) when the database
    refuses the content, e.g. a check a course file got past.
    """
    report = LoadReport(course.id)
    async with store.connection("load course") as conn, conn.transaction():
        await conn.execute(_LOCK, course.id)
        stored_course = await conn.fetchrow(_SELECT_COURSE, course.id)
        modules = {r["id"]: dict(r) for r in await conn.fetch(_SELECT_MODULES, course.id)}
        lessons = {r["id"]: dict(r) for r in await conn.fetch(_SELECT_LESSONS, course.id)}
        exercises = {r["id"]: dict(r) for r in await conn.fetch(_SELECT_EXERCISES, course.id)}

        module_plan = _Plan("module", report)
        lesson_plan = _Plan("lesson", report)
        exercise_plan = _Plan("exercise", report)
        for module in course.modules:
            _plan_module(module_plan, modules.get(module.id), course.id, module)
            for lesson in module.lessons:
                _plan_lesson(lesson_plan, lessons.get(lesson.id), module.id, lesson)
                for exercise in lesson.exercises:
                    _plan_exercise(exercise_plan, exercises.get(exercise.id), lesson.id, exercise)
        retired = {
            "module": module_plan.retire(modules.values(), {m.id for m in course.modules}),
            "lesson": lesson_plan.retire(lessons.values(), {x.id for x in course.lessons()}),
            "exercise": exercise_plan.retire(
                exercises.values(), {x.id for x in course.exercises()}
            ),
        }

        course_fields = (course.title, course.description, course.revision)
        course_action: Action
        if stored_course is None:
            course_action = "added"
        elif tuple(stored_course) != course_fields or report.changed:
            course_action = "updated"
        else:
            course_action = "unchanged"
        report.changes.insert(0, Change("course", course.id, course_action))

        source = course.source or None
        if course_action == "added":
            await conn.execute(_INSERT_COURSE, course.id, *course_fields, source)
        elif course_action == "updated":
            await conn.execute(_UPDATE_COURSE, course.id, *course_fields, source)
        # Parents before children (foreign keys); retiring last, once moves are done.
        for plan, sql in (
            (module_plan, _UPSERT_MODULE),
            (lesson_plan, _UPSERT_LESSON),
            (exercise_plan, _UPSERT_EXERCISE),
        ):
            if plan.writes:
                await conn.executemany(sql, plan.writes)
        for kind, ids in retired.items():
            if ids:
                await conn.execute(_RETIRE[kind], ids)
    return report


def _plan_module(plan: _Plan, existing: Row | None, course_id: str, m: Module) -> None:
    wanted = {"position": m.position, "title": m.title, "description": m.description}
    plan.compare(m.id, existing, wanted, (m.id, course_id, m.position, m.title, m.description))


def _plan_lesson(plan: _Plan, existing: Row | None, module_id: str, x: Lesson) -> None:
    wanted = {
        "module_id": module_id,
        "position": x.position,
        "title": x.title,
        "kind": x.kind,
        "demo_id": x.demo_id,
        "body": x.body,
    }
    plan.compare(
        x.id, existing, wanted, (x.id, module_id, x.position, x.title, x.kind, x.demo_id, x.body)
    )


def _plan_exercise(plan: _Plan, existing: Row | None, lesson_id: str, x: Exercise) -> None:
    graded = {
        "instructions": x.instructions,
        "language": x.language,
        "points": x.points,
        "starter": x.starter,
        "tests": x.tests,
        "solution": x.solution,
    }
    version = 1
    if existing is not None:
        # Compare the files decoded: the same JSON may be stored with other spacing.
        existing = {
            **existing,
            **{k: _files(existing[k]) for k in ("starter", "tests", "solution")},
        }
        stored = {k: existing[k] for k in graded}
        version = existing["version"] + (1 if stored != graded else 0)
    wanted = {"lesson_id": lesson_id, "position": x.position, "title": x.title, **graded}
    row = (
        x.id,
        lesson_id,
        x.position,
        x.title,
        x.instructions,
        x.language,
        x.points,
        _json(x.starter),
        _json(x.tests),
        _json(x.solution),
        version,
    )
    plan.compare(x.id, existing, wanted, row)
