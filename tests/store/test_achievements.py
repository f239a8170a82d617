"""Achievements on the real Postgres: incremental awards, progress, backfill, the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from progress import (
    METRICS,
    EventReversed,
    PairingMinutes,
    QuestionAnswered,
    RunFinished,
    apply_event,
    backfill,
    install_default_rules,
    install_rules,
    load_rules,
    parse_rules,
)
from progress.rules import metric_values
from store import Store
from tests.store.test_progress_events import T0, graded, ledger_sum, make_exercises, make_user

ROOT = Path(__file__).resolve().parents[2]

RULES = """
achievements:
  - id: first-steps
    name: First steps
    xp: 10
    rarity: common
    conditions: [{metric: exercises_passed, at_least: 1}]
  - id: three-exercises
    name: Three
    xp: 30
    rarity: rare
    conditions: [{metric: exercises_passed, at_least: 3}]
  - id: first-try
    name: First try
    xp: 5
    rarity: common
    conditions: [{metric: first_try_passes, at_least: 1}]
  - id: helper
    name: Helper
    xp: 7
    rarity: common
    conditions: [{metric: questions_answered, at_least: 3}]
  - id: pair-five
    name: Team player
    rarity: epic
    conditions: [{metric: distinct_partners, at_least: 5}]
  - id: week-streak
    name: Seven days
    xp: 70
    rarity: legendary
    conditions: [{metric: streak_days, at_least: 7}]
"""


async def user_achievements(store: Store, user: uuid.UUID) -> dict[str, tuple[bool, dict]]:
    async with store.connection("test") as conn:
        rows = await conn.fetch(
            "SELECT achievement_id, awarded_at IS NOT NULL AS awarded, progress "
            "FROM user_achievements WHERE user_id = $1",
            user,
        )
    return {r["achievement_id"]: (r["awarded"], json.loads(r["progress"])) for r in rows}


async def test_achievements_are_awarded_incrementally_with_progress(store: Store) -> None:
    await install_rules(store, parse_rules(RULES))
    user = await make_user(store)
    exercises = await make_exercises(store, 3, points=10)
    # A first try that fails: no first-try achievement for this exercise.
    failed = await apply_event(store, graded(user, exercises[0], 0.5))
    assert failed.achievements == ()
    passed = await apply_event(store, graded(user, exercises[0], 1.0))
    assert passed.achievements == ("first-steps",)
    assert passed.points == 5 + 10  # the exercise's remaining half, and the achievement
    state = await user_achievements(store, user)
    assert state["three-exercises"] == (
        False,
        {"exercises_passed": {"value": 1, "target": 3}},
    )
    assert state["first-try"] == (False, {"first_try_passes": {"value": 0, "target": 1}})
    second = await apply_event(store, graded(user, exercises[1], 1.0))
    assert second.achievements == ("first-try",)
    third = await apply_event(store, graded(user, exercises[2], 1.0, key="third"))
    assert third.achievements == ("three-exercises",)
    # A replay answers the same, and awards nothing again.
    replay = await apply_event(store, graded(user, exercises[2], 1.0, key="third"))
    assert (replay.duplicate, replay.achievements, replay.points) == (
        True,
        ("three-exercises",),
        40,
    )
    assert await ledger_sum(store, user, "achievement") == 10 + 5 + 30
    assert await ledger_sum(store, user) == 30 + 45


async def test_helper_pairing_and_streak_achievements(store: Store) -> None:
    await install_rules(store, parse_rules(RULES))
    user = await make_user(store, time_zone="Europe/Berlin")
    partners = [await make_user(store) for _ in range(5)]
    answered = [
        await apply_event(
            store,
            QuestionAnswered(key=f"a:{n}", user_id=user, occurred_at=T0, question_id=n),
        )
        for n in range(3)
    ]
    assert [a.achievements for a in answered] == [(), (), ("helper",)]
    # Five sessions, but with four people: not yet.
    for n, partner in enumerate([*partners[:4], partners[0]]):
        result = await apply_event(
            store,
            PairingMinutes(
                key=f"p:{n}", user_id=user, occurred_at=T0, partner_id=partner, minutes=5
            ),
        )
        assert result.achievements == ()
    fifth = await apply_event(
        store,
        PairingMinutes(key="p:5", user_id=user, occurred_at=T0, partner_id=partners[4], minutes=5),
    )
    assert fifth.achievements == ("pair-five",)
    awarded = []
    for day in range(1, 7):
        result = await apply_event(
            store,
            RunFinished(key=f"r:{day}", user_id=user, occurred_at=T0 + timedelta(days=day)),
        )
        awarded.extend(result.achievements)
    assert awarded == ["week-streak"]


async def test_concurrent_events_award_an_achievement_once(store: Store) -> None:
    await install_rules(store, parse_rules(RULES))
    user = await make_user(store)
    # An event first, so the person's row exists: concurrent events then meet on its lock.
    await apply_event(store, RunFinished(key="warm", user_id=user, occurred_at=T0))
    await asyncio.gather(
        *(
            apply_event(
                store,
                QuestionAnswered(
                    key=f"a:{n}",
                    user_id=user,
                    # each on its own day (no daily tally row for them to queue on), two
                    # days apart: consecutive days applied in a lucky order would also
                    # make a 7-day streak and award "week-streak" besides
                    occurred_at=T0 + timedelta(days=2 * n),
                    question_id=n,
                ),
            )
            for n in range(20)
        )
    )
    awarded, progress = (await user_achievements(store, user))["helper"]
    assert awarded is True
    assert progress == {"questions_answered": {"value": 20, "target": 3}}
    assert await ledger_sum(store, user, "achievement") == 7
    assert await ledger_sum(store, user, "answer") == 20 * 5


async def test_backfill_awards_exactly_those_who_qualify(store: Store) -> None:
    exercises = await make_exercises(store, 2)
    alice, bob, carol = [await make_user(store, name) for name in ("alice", "bob", "carol")]
    for exercise in exercises:
        await apply_event(store, graded(alice, exercise, 1.0))
    await apply_event(store, graded(bob, exercises[0], 1.0))
    await apply_event(store, graded(carol, exercises[0], 0.5))
    # Added after the fact: nobody has it until the backfill.
    rules = parse_rules(
        RULES
        + """
  - id: two-exercises
    name: Two
    xp: 25
    rarity: rare
    conditions: [{metric: exercises_passed, at_least: 2}]
"""
    )
    await install_rules(store, rules)
    assert "two-exercises" not in await user_achievements(store, alice)
    first = await backfill(store, "two-exercises")
    assert first == {"two-exercises": [alice]}
    assert await ledger_sum(store, alice, "achievement") == 25
    assert (await user_achievements(store, carol))["two-exercises"] == (
        False,
        {"exercises_passed": {"value": 0, "target": 2}},
    )
    again = await backfill(store, "two-exercises")
    assert again == {"two-exercises": []}
    everything = await backfill(store)
    assert sorted(everything["first-steps"]) == sorted([alice, bob])
    assert sorted(everything["first-try"]) == sorted([alice, bob])
    assert everything["two-exercises"] == everything["helper"] == []
    assert all(users == [] for users in (await backfill(store)).values())
    assert await ledger_sum(store, alice, "achievement") == 25 + 10 + 5
    assert await ledger_sum(store, bob, "achievement") == 10 + 5
    assert await ledger_sum(store, carol, "achievement") == 0
    async with store.connection("test") as conn:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM progress_events WHERE type = 'achievement.backfilled'"
            )
            == 5
        )


async def test_reloading_rules_retires_and_restores(store: Store) -> None:
    rules = parse_rules(RULES)
    done = await install_rules(store, rules)
    assert len(done.added) == 6 and done.updated == [] and done.retired == []
    unchanged = await install_rules(store, rules)
    assert (unchanged.added, unchanged.updated, unchanged.retired) == ([], [], [])
    fewer = await install_rules(store, rules[1:])
    assert fewer.retired == ["first-steps"]
    # A retired achievement is no longer awarded.
    user = await make_user(store)
    [exercise] = await make_exercises(store)
    assert "first-steps" not in (await apply_event(store, graded(user, exercise, 1.0))).achievements
    back = await install_rules(store, rules)
    assert back.updated == ["first-steps"]


async def test_default_rules_load(store: Store) -> None:
    done = await install_rules(store, load_rules())
    assert {"ten-exercises", "week-streak", "pair-five", "first-try", "helper"} <= set(done.added)


async def test_a_fresh_database_gets_the_shipped_catalogue_once(store: Store) -> None:
    """What a server does at start: install the shipped rules on an empty catalogue only,
    so an operator's own catalogue (a retired achievement included) survives restarts."""
    first, second = await asyncio.gather(install_default_rules(store), install_default_rules(store))
    installed = [r for r in (first, second) if r is not None]
    assert len(installed) == 1 and "first-try" in installed[0].added
    custom = [a for a in load_rules() if a.id != "first-try"]
    assert (await install_rules(store, custom)).retired == ["first-try"]
    assert await install_default_rules(store) is None
    async with store.connection("check") as conn:
        retired = await conn.fetchval("SELECT retired_at FROM achievements WHERE id = 'first-try'")
    assert retired is not None


def test_cli_loads_and_backfills(dsn: str, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    env = {**os.environ, "DATABASE_URL": dsn}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "server.cli", "achievements", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    loaded = cli("load", str(rules))
    assert loaded.returncode == 0, loaded.stderr
    assert "6 achievements" in loaded.stdout
    filled = cli("backfill", "helper")
    assert filled.returncode == 0, filled.stderr
    assert "helper: awarded to 0 more people" in filled.stdout
    missing = cli("backfill", "no-such")
    assert missing.returncode == 2
    assert "no active achievement 'no-such'" in missing.stderr


async def test_a_reversal_keeps_awards_but_progress_drops(store: Store) -> None:
    await install_rules(store, parse_rules(RULES))
    user = await make_user(store)
    [exercise] = await make_exercises(store)
    passed = await apply_event(store, graded(user, exercise, 1.0))
    assert (passed.points, passed.achievements) == (10 + 10 + 5, ("first-steps", "first-try"))
    undo = await apply_event(
        store,
        EventReversed(key="undo", user_id=user, occurred_at=T0, reverses=passed.event_id),
    )
    assert [(a.type, a.points) for a in undo.awards] == [("exercise", -10)]
    state = await user_achievements(store, user)
    assert state["first-steps"] == (True, {"exercises_passed": {"value": 0, "target": 1}})
    assert state["three-exercises"] == (False, {"exercises_passed": {"value": 0, "target": 3}})
    assert await ledger_sum(store, user) == 15


async def test_every_metric_a_rules_file_may_name_is_counted_by_the_database(
    store: Store,
) -> None:
    """The rules file is checked against METRICS in Python; the counting happens in
    the database's progress_metric: the two lists must be the same."""
    user = await make_user(store)
    await apply_event(store, RunFinished(key="r", user_id=user, occurred_at=T0))
    async with store.connection("test") as conn:
        values = await metric_values(conn, user, METRICS)
        assert set(values) == set(METRICS)
        assert values["streak_days"] == 1
        assert {v for k, v in values.items() if k != "streak_days"} == {0}
        with pytest.raises(asyncpg.InvalidParameterValueError, match="unknown achievement"):
            await metric_values(conn, user, ["exercises_pased"])
