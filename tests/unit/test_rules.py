"""Achievement rule files and the pure XP rules, without a database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from progress import DEFAULT_RULES, RulesError, code_hash, exercise_xp, load_rules, parse_rules
from progress.rules import METRICS, Metric

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
achievements:
  - id: ten
    name: Ten exercises
    description: Pass 10 exercises.
    icon: "🔟"
    xp: 50
    rarity: rare
    conditions:
      - metric: exercises_passed
        at_least: 10
  - id: streak
    name: Seven days
    rarity: epic
    conditions:
      - metric: streak_days
        at_least: 7
"""


def refusal(text: str, tmp_path: Path) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(RulesError) as info:
        load_rules(path)
    message = str(info.value)
    assert message.startswith(f"{path}"), message
    return message[len(str(path)) :]


def test_the_default_file_is_valid() -> None:
    achievements = load_rules(DEFAULT_RULES)
    ids = {a.id for a in achievements}
    assert {"ten-exercises", "week-streak", "pair-five", "first-try", "helper"} <= ids
    assert all(a.rarity in {"common", "rare", "epic", "legendary"} for a in achievements)


def test_a_good_file_parses() -> None:
    ten, streak = parse_rules(GOOD, "good.yaml")
    assert (ten.id, ten.xp, ten.rarity, ten.icon) == ("ten", 50, "rare", "🔟")
    assert (ten.conditions[0].metric, ten.conditions[0].at_least) == ("exercises_passed", 10)
    assert (streak.xp, streak.description) == (0, "")


def test_every_metric_has_a_query() -> None:
    assert set(Metric.__args__) == set(METRICS)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("xp: 50", "xp: lots"), ":6: achievements[0].xp: Expected `int`, got `str`"),
        (("xp: 50", "xp: -5"), ":6: achievements[0].xp: Expected `int` >= 0"),
        (
            ("metric: streak_days", "metric: streak_weeks"),
            ":15: achievements[1].conditions[0].metric: Invalid enum value 'streak_weeks' "
            "(known metrics: demos_watched, distinct_partners,",
        ),
        (("rarity: epic", "rarity: mythic"), ":13: achievements[1].rarity:"),
        (
            ("at_least: 10", "at_least: 0"),
            ":10: achievements[0].conditions[0].at_least: Expected `int` >= 1",
        ),
        (("    rarity: rare\n", ""), ":2: achievements[0]: Object missing required field `rarity`"),
        (
            ("    xp: 50\n", "    xp: 50\n    colour: red\n"),
            ":2: achievements[0]: Object contains unknown field `colour`",
        ),
        (("id: streak", "id: ten"), ":11: achievements[1].id: 'ten' is declared twice"),
        (("id: streak", "id: Not Valid"), ":11: achievements[1].id: Expected `str` matching regex"),
        (("    xp: 50\n", "    xp: 50\n    xp: 60\n"), ":7: achievements[0]: duplicate key 'xp'"),
        (
            ("conditions:\n      - metric: e", "conditions: [\n      - metric: e"),
            ":9: not valid YAML: expected the node content",
        ),
    ],
)
def test_a_malformed_file_is_refused_naming_the_place(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    old, new = change
    assert old in GOOD
    message = refusal(GOOD.replace(old, new, 1), tmp_path)
    assert message.startswith(expected), message


def test_syntax_errors_name_the_line(tmp_path: Path) -> None:
    message = refusal("achievements:\n  - id: x\n    name: [unclosed\n", tmp_path)
    assert message.startswith(":4: not valid YAML"), message
    assert refusal("- just\n- a list\n", tmp_path).startswith(": expected a mapping")
    assert refusal("achievements: 3\n", tmp_path).startswith(":1: achievements: Expected `array`")


def test_json_files_are_accepted_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(
        '{"achievements": [\n {"id": "a", "name": "A", "rarity": "rare",\n'
        '  "conditions": [{"metric": "demos_watched", "at_least": "3"}]}]}'
    )
    with pytest.raises(
        RulesError,
        match=r"rules\.json:3: achievements\[0\]\.conditions\[0\]"
        r"\.at_least: Expected `int`, got `str`",
    ):
        load_rules(path)


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"missing\.yaml: cannot read"):
        load_rules(tmp_path / "missing.yaml")


def test_the_cli_refuses_a_bad_file_before_opening_the_database(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("rarity: epic", "rarity: mythic"))
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "achievements", "load", str(path)],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert f"{path}:13: achievements[1].rarity" in result.stderr


@pytest.mark.parametrize(
    ("points", "best", "score", "viewed", "xp"),
    [
        (10, 0.0, 1.0, False, 10),
        (10, 0.3, 0.8, False, 5),
        (10, 0.8, 0.8, False, 0),
        (10, 0.8, 0.5, False, 0),
        (10, 0.4, 1.0, True, 3),
        (7, 0.0, 1 / 3, False, 2),
        (7, 1 / 3, 2 / 3, False, 2),
        (7, 2 / 3, 1.0, False, 3),
        (0, 0.0, 1.0, False, 0),
    ],
)
def test_exercise_xp(points: int, best: float, score: float, viewed: bool, xp: int) -> None:
    assert exercise_xp(points, best, score, viewed) == xp


def test_code_hash_is_the_same_for_the_same_files_in_any_order() -> None:
    one = code_hash({"a.py": "x = 1\n", "b.py": "y = 2\n"})
    assert one == code_hash({"b.py": "y = 2\n", "a.py": "x = 1\n"})
    assert one != code_hash({"a.py": "x = 1\n", "b.py": "y = 3\n"})
    assert one != code_hash({"a.py": "x = 1\n", "c.py": "y = 2\n"})
    assert len(one) == 64
