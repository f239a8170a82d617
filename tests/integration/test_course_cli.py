"""``opencode-live course validate|load`` through the real command line and a real database."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "courses" / "python-101"


def run(*args: str, cwd: Path = ROOT, database_url: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if database_url:
        env["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "course", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def count(dsn: str, sql: str) -> int:
    async def main() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(main())


def bad_course(tmp_path: Path) -> Path:
    folder = Path(shutil.copytree(SAMPLE, tmp_path / "python-101"))
    loops = folder / "modules" / "loops.yaml"
    loops.write_text(
        loops.read_text()
        .replace("points: 30", "points: -3")
        .replace("language: python", "language: rust", 1)
    )
    return folder


def test_validate_sample_course() -> None:
    result = run("validate", "courses/python-101")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok: courses/python-101 (course py101: 3 modules")


def test_validate_bad_course_names_file_line_and_field(tmp_path: Path) -> None:
    folder = bad_course(tmp_path)
    result = run("validate", "python-101", cwd=tmp_path)
    assert result.returncode == 1
    text = (folder / "modules" / "loops.yaml").read_text().splitlines()
    language_line = next(i for i, s in enumerate(text, 1) if "language: rust" in s)
    points_line = next(i for i, s in enumerate(text, 1) if "points: -3" in s)
    assert result.stdout.splitlines() == [
        f"python-101/modules/loops.yaml:{language_line}: lessons[1].exercises[0].language: "
        '"rust" is not a language of the executor (one of: javascript, python)',
        f"python-101/modules/loops.yaml:{points_line}: lessons[1].exercises[1].points: "
        "must be at least 0, not -3",
    ]
    assert "2 problem(s)" in result.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = run("validate", str(tmp_path / "nowhere"))
    assert missing.returncode == 2
    assert "no such course folder" in missing.stderr
    empty = run("validate", str(tmp_path))
    assert empty.returncode == 2
    assert "no course.yaml" in empty.stderr


def test_load_then_reload(database_url: str) -> None:
    first = run("load", "courses/python-101", database_url=database_url)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "courses/python-101: course py101 loaded" in first.stdout
    assert "exercises: 5 added, 0 updated, 0 retired, 0 unchanged" in first.stdout
    assert count(database_url, "SELECT count(*) FROM exercises") == 5

    again = run("load", "courses/python-101", database_url=database_url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "course py101 already up to date" in again.stdout
    assert "exercises: 0 added, 0 updated, 0 retired, 5 unchanged" in again.stdout


def test_load_of_a_bad_course_loads_nothing(tmp_path: Path, database_url: str) -> None:
    bad_course(tmp_path)
    result = run("load", "python-101", cwd=tmp_path, database_url=database_url)
    assert result.returncode == 1
    assert "python-101/modules/loops.yaml:" in result.stdout
    assert "points: must be at least 0, not -3" in result.stdout
    # Validation comes first: the database was not even migrated.
    assert count(database_url, "SELECT count(*) FROM pg_tables WHERE tablename = 'courses'") == 0


def test_load_without_a_database_fails_with_a_message(tmp_path: Path) -> None:
    result = run("load", "courses/python-101", database_url="postgresql://nobody@127.0.0.1:1/x")
    assert result.returncode == 1
    assert "not loaded" in result.stderr
