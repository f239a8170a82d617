"""``opencode-live demo validate`` through the real command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "demos" / "examples"


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "demo", "validate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=None,
    )


def bad_demo() -> dict:
    return {
        "format": "opencode-live/demo",
        "version": 1,
        "title": "bad",
        "files": {"main.py": "print(1)\n"},
        "steps": [
            {"id": "one", "title": "One"},
            {
                "id": "one",
                "title": "Two",
                "highlights": [{"file": "mian.py", "start": {"line": 1}}],
            },
        ],
    }


def test_examples_folder_is_ok() -> None:
    result = run("demos/examples")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert sorted(lines) == sorted(
        f"ok: demos/examples/{p.name}" for p in EXAMPLES.glob("*.demo.json")
    )
    assert len(lines) >= 3


def test_invalid_file_lists_every_error_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "loops.demo.json").write_text(json.dumps(bad_demo()))
    good = EXAMPLES / "python-loops.demo.json"
    result = run("loops.demo.json", str(good), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        'loops.demo.json: steps[1] (id "one"): id: '
        'duplicate step id "one" (first used by steps[0])',
        'loops.demo.json: steps[1] (id "one"): highlights[0].file: '
        'no file "mian.py" in the demo\'s files at this step',
        f"ok: {good}",
    ]


def test_folder_is_searched_recursively(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "x.demo.json").write_text('{"format": "opencode-live/demo", "version": 9}')
    (tmp_path / "notes.json").write_text("{}")  # not a demo: ignored
    result = run(str(tmp_path))
    assert result.returncode == 1
    assert result.stdout == (
        f"{nested / 'x.demo.json'}: version: unsupported version 9: this opencode-live reads "
        "version 1 (the file is from a newer release)\n"
    )


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = run(str(tmp_path / "nope.demo.json"))
    assert missing.returncode == 2
    assert "no such file or folder" in missing.stderr
    empty = run(str(tmp_path))
    assert empty.returncode == 2
    assert "no *.demo.json files in" in empty.stderr
    no_args = run()
    assert no_args.returncode == 2
    assert "usage:" in no_args.stderr
