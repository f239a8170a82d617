"""Loading courses into a real Postgres: upserts in place, retires instead of deleting.

Each test copies the sample course to ``tmp_path`` and edits its YAML the way
an author would, then loads it again into the test's own database.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import asyncpg
import pytest

from progress.course import read_course
from progress.loader import LoadReport, load_course
from store import Store

SAMPLE = Path(__file__).resolve().parents[2] / "courses" / "python-101"
LANGUAGES = ("javascript", "python")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the sample course that a test may edit (resolved: as courses.source has it)."""
    return Path(shutil.copytree(SAMPLE, tmp_path / "python-101")).resolve()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


async def load(store: Store, folder: Path) -> LoadReport:
    return await load_course(store, read_course(folder, languages=LANGUAGES))


async def rows(store: Store, sql: str, *args: object) -> list[asyncpg.Record]:
    async with store.connection("test") as conn:
        return await conn.fetch(sql, *args)


async def snapshot(store: Store) -> dict[str, list[tuple]]:
    """Every course row with every column: what "nothing changed" compares."""
    out = {}
    for table in ("courses", "modules", "lessons", "exercises"):
        out[table] = [tuple(r) for r in await rows(store, f"SELECT * FROM {table} ORDER BY id")]
    return out


async def test_first_load_adds_everything(store: Store, folder: Path) -> None:
    report = await load(store, folder)
    course = read_course(folder)
    assert report.course_id == "py101"
    assert report.count("added", "course") == 1
    assert report.count("added", "module") == len(course.modules) == 3
    assert report.count("added", "lesson") == len(list(course.lessons()))
    assert report.count("added", "exercise") == len(list(course.exercises())) >= 4
    assert report.updated == report.retired == report.unchanged == 0

    (stored,) = await rows(store, "SELECT * FROM courses")
    assert (stored["id"], stored["title"], stored["version"]) == ("py101", "Python 101", 1)
    assert stored["source"] == str(folder)
    modules = await rows(store, "SELECT id, position FROM modules ORDER BY position")
    assert [(r["id"], r["position"]) for r in modules] == [
        ("py101.basics", 0),
        ("py101.loops", 1),
        ("py101.strings", 2),
    ]
    (demo,) = await rows(store, "SELECT kind, demo_id FROM lessons WHERE kind = 'demo'")
    assert demo["demo_id"] == "python-loops"
    (exercise,) = await rows(store, "SELECT * FROM exercises WHERE id = 'py101.loops.sum-list'")
    assert exercise["lesson_id"] == "py101.loops.practice"
    assert exercise["points"] == 20 and exercise["version"] == 1
    assert exercise["retired_at"] is None
    starter = json.loads(exercise["starter"])
    assert "def sum_list" in starter["main.py"]
    assert set(json.loads(exercise["tests"])) == {"test_main.py"}
    assert "for number" in json.loads(exercise["solution"])["main.py"]


async def test_reload_is_idempotent(store: Store, folder: Path) -> None:
    await load(store, folder)
    before = await snapshot(store)
    await asyncio.sleep(0.01)  # a rewrite would show in updated_at / loaded_at
    again = await load(store, folder)
    assert not again.changed
    assert again.added == again.updated == again.retired == 0
    assert again.unchanged == sum(len(v) for v in before.values())
    assert await snapshot(store) == before


async def test_changed_exercise_updates_in_place(store: Store, folder: Path) -> None:
    await load(store, folder)
    (old,) = await rows(store, "SELECT * FROM exercises WHERE id = 'py101.loops.sum-list'")
    edit(folder / "modules" / "loops.yaml", "points: 20", "points: 25")
    (folder / "exercises" / "sum-list" / "tests" / "test_more.py").write_text(
        "from main import sum_list\n\n\ndef test_one():\n    assert sum_list([7]) == 7\n"
    )
    report = await load(store, folder)
    assert report.ids("updated", "exercise") == ["py101.loops.sum-list"]
    assert report.ids("updated", "course") == ["py101"]
    assert report.count("added") == report.count("retired") == 0
    (new,) = await rows(store, "SELECT * FROM exercises WHERE id = 'py101.loops.sum-list'")
    assert new["points"] == 25
    assert new["version"] == old["version"] + 1
    assert set(json.loads(new["tests"])) == {"test_main.py", "test_more.py"}
    assert new["created_at"] == old["created_at"]
    assert new["updated_at"] > old["updated_at"]

    # A new title is not a new version: nobody's grade depends on it.
    edit(folder / "modules" / "loops.yaml", "title: Sum a list", "title: Add up a list")
    report = await load(store, folder)
    assert report.ids("updated", "exercise") == ["py101.loops.sum-list"]
    (renamed,) = await rows(store, "SELECT * FROM exercises WHERE id = 'py101.loops.sum-list'")
    assert renamed["title"] == "Add up a list"
    assert renamed["version"] == new["version"]


async def test_exercise_moved_to_another_lesson_keeps_its_id(store: Store, folder: Path) -> None:
    await load(store, folder)
    loops = folder / "modules" / "loops.yaml"
    # Turn the reading lesson into an exercise lesson and move fizzbuzz into it.
    text = loops.read_text()
    head, fizz = text.split("      - id: fizzbuzz\n")
    head = head.replace(
        "    kind: reading\n",
        "    kind: exercise\n    exercises:\n      - id: fizzbuzz\n" + fizz,
        1,
    )
    loops.write_text(head)
    report = await load(store, folder)
    assert "py101.loops.fizzbuzz" in report.ids("updated", "exercise")
    assert report.count("retired") == 0
    (row,) = await rows(store, "SELECT * FROM exercises WHERE id = 'py101.loops.fizzbuzz'")
    assert row["lesson_id"] == "py101.loops.for-loops"
    assert row["version"] == 1


async def test_removed_exercise_is_retired_and_references_survive(
    store: Store, folder: Path
) -> None:
    await load(store, folder)
    async with store.connection("test") as conn:
        # Stands for code_submissions / user_progress: a row pointing at the exercise.
        await conn.execute(
            "CREATE TABLE test_refs (exercise_id text NOT NULL REFERENCES exercises (id),"
            " lesson_id text NOT NULL REFERENCES lessons (id))"
        )
        await conn.execute(
            "INSERT INTO test_refs VALUES ('py101.loops.fizzbuzz', 'py101.basics.welcome')"
        )
    loops = folder / "modules" / "loops.yaml"
    text = loops.read_text()
    loops.write_text(text[: text.index("      - id: fizzbuzz\n")])
    edit(folder / "modules" / "basics.yaml", "  - id: welcome\n", "  - id: hello\n")
    report = await load(store, folder)
    assert report.ids("retired", "exercise") == ["py101.loops.fizzbuzz"]
    assert report.ids("retired", "lesson") == ["py101.basics.welcome"]
    assert report.ids("added", "lesson") == ["py101.basics.hello"]

    (row,) = await rows(store, "SELECT * FROM exercises WHERE id = 'py101.loops.fizzbuzz'")
    assert row["retired_at"] is not None
    assert await rows(store, "SELECT * FROM test_refs") != []
    live = await rows(store, "SELECT id FROM exercises WHERE retired_at IS NULL ORDER BY id")
    assert "py101.loops.fizzbuzz" not in [r["id"] for r in live]

    # Retired stays retired on the next load (not reported again)...
    again = await load(store, folder)
    assert not again.changed
    # ...and putting it back brings the same row back.
    loops.write_text(text)
    back = await load(store, folder)
    assert back.ids("updated", "exercise") == ["py101.loops.fizzbuzz"]
    (row,) = await rows(store, "SELECT * FROM exercises WHERE id = 'py101.loops.fizzbuzz'")
    assert row["retired_at"] is None and row["version"] == 1


async def test_removed_module_retires_its_lessons_and_exercises(store: Store, folder: Path) -> None:
    await load(store, folder)
    edit(folder / "course.yaml", "  - modules/loops.yaml\n", "")
    report = await load(store, folder)
    assert report.ids("retired", "module") == ["py101.loops"]
    assert report.ids("retired", "lesson") == ["py101.loops.for-loops", "py101.loops.practice"]
    assert report.ids("retired", "exercise") == ["py101.loops.fizzbuzz", "py101.loops.sum-list"]
    # strings moved up one place.
    assert report.ids("updated", "module") == ["py101.strings"]
    counts = await rows(
        store,
        "SELECT count(*) FILTER (WHERE retired_at IS NOT NULL) AS retired, count(*) AS total"
        " FROM exercises",
    )
    assert (counts[0]["retired"], counts[0]["total"]) == (2, 5)


async def test_two_loads_at_once_take_turns(store: Store, folder: Path) -> None:
    course = read_course(folder, languages=LANGUAGES)
    first, second = await asyncio.gather(load_course(store, course), load_course(store, course))
    assert sorted([first.added, second.added]) == [0, first.added + second.added]
    assert (await snapshot(store))["exercises"]
