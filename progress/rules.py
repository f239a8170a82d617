"""Achievement rules: the file they are declared in, and their evaluation.

Achievements are data, not code: ``achievements.yaml`` (or ``.json``) lists
them with conditions over a fixed set of *metrics* (exercises passed, streak
days, distinct partners...), each a query over the progress tables. Keeping
the metric list in code and the thresholds in the file means a teacher can add
"25 exercises passed" without a deploy, and a typo in the file is refused with
its place (file, line, field) instead of silently never awarding.

Evaluation is incremental: an event names the metrics it can change, and only
achievements that use one of them are looked at, inside the event's
transaction. An achievement added later is awarded to those who already
qualify by :func:`backfill`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import asyncpg
import msgspec
import yaml

from store import Store

from .ledger import PointAward, lock_person

#: What a condition may count. Each is counted by the database's ``progress_metric``
#: (migration 0010), next to the data, so that an event's achievements are
#: evaluated in one round trip; this list is what the rules file is checked against.
METRICS: tuple[str, ...] = (
    "exercises_passed",
    "first_try_passes",
    "lessons_completed",
    "demos_watched",
    "distinct_partners",
    "questions_asked",
    "questions_answered",
    "streak_days",
)

Metric = Literal[
    "exercises_passed",
    "first_try_passes",
    "lessons_completed",
    "demos_watched",
    "distinct_partners",
    "questions_asked",
    "questions_answered",
    "streak_days",
]

#: The metrics each event type can change (streak_days: every activity).
TOUCHES: dict[str, frozenset[str]] = {
    "submission.graded": frozenset({"exercises_passed", "first_try_passes"}),
    "lesson.completed": frozenset({"lessons_completed"}),
    "demo.watched": frozenset({"demos_watched"}),
    "pairing.minutes": frozenset({"distinct_partners"}),
    "question.asked": frozenset({"questions_asked"}),
    "question.answered": frozenset({"questions_answered"}),
}

_ID = r"^[a-z0-9][a-z0-9_-]*$"


class Condition(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``metric`` reaches ``at_least``."""

    metric: Metric
    at_least: Annotated[int, msgspec.Meta(ge=1)]


class Achievement(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One achievement as declared in the rules file; all conditions must hold."""

    id: Annotated[str, msgspec.Meta(pattern=_ID, max_length=64)]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    rarity: Literal["common", "rare", "epic", "legendary"]
    conditions: Annotated[list[Condition], msgspec.Meta(min_length=1)]
    description: str = ""
    icon: str = ""
    xp: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 0


class RulesFile(msgspec.Struct, forbid_unknown_fields=True):
    achievements: list[Achievement]


class RulesError(ValueError):
    """A rules file that cannot be used; the message names file, line and field."""


DEFAULT_RULES = Path(__file__).with_name("achievements.yaml")

_AT = re.compile(r"^(?P<message>.*?) - at `\$(?P<path>[^`]*)`$", re.DOTALL)
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def _lines(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    """Record the 1-based line of every node by its path; refuse duplicate keys, which
    PyYAML would otherwise resolve silently by keeping the last one."""
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                raise RulesError(
                    f"{key_node.start_mark.line + 1}: {_dotted(path)}: duplicate key {key!r}"
                )
            seen.add(key)
            _lines(value_node, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _lines(item, (*path, index), out)


def _dotted(path: Sequence[Any]) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text or "(top level)"


def parse_rules(text: str, source: str = "<rules>") -> list[Achievement]:
    """Parse and check a rules document (YAML, of which JSON is a subset).

    Every refusal names ``source``, the line where possible and the field, e.g.
    ``achievements.yaml:12: achievements[1].rarity: Expected `str` ...``.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise RulesError(f"{where}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: not valid YAML: {exc}") from None
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        try:
            _lines(node, (), lines)
        except RulesError as exc:
            raise RulesError(f"{source}:{exc}") from None
    if not isinstance(data, dict):
        raise RulesError(f"{source}: expected a mapping with an `achievements` list")
    try:
        rules = msgspec.convert(data, RulesFile)
    except msgspec.ValidationError as exc:
        match = _AT.match(str(exc))
        if match is None:
            raise RulesError(f"{source}: {exc}") from None
        path: tuple[Any, ...] = tuple(
            int(index) if index else name for name, index in _STEP.findall(match["path"])
        )
        line = next((lines[path[:n]] for n in range(len(path), -1, -1) if path[:n] in lines), None)
        where = f"{source}:{line}" if line is not None else source
        message = match["message"]
        if path and path[-1] == "metric" and message.startswith("Invalid enum value"):
            message += f" (known metrics: {', '.join(sorted(METRICS))})"
        raise RulesError(f"{where}: {_dotted(path)}: {message}") from None
    seen: dict[str, int] = {}
    for index, achievement in enumerate(rules.achievements):
        if achievement.id in seen:
            line = lines.get(("achievements", index, "id"))
            where = f"{source}:{line}" if line is not None else source
            raise RulesError(
                f"{where}: achievements[{index}].id: {achievement.id!r} is declared twice "
                f"(first as achievements[{seen[achievement.id]}])"
            )
        seen[achievement.id] = index
    return rules.achievements


def load_rules(path: str | Path = DEFAULT_RULES) -> list[Achievement]:
    """Read and check a rules file; :class:`RulesError` names what is wrong and where."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path}: cannot read: {exc}") from None
    return parse_rules(text, str(path))


@dataclass(frozen=True, slots=True)
class Installed:
    """What :func:`install_rules` changed in the catalogue."""

    added: list[str]
    updated: list[str]
    retired: list[str]


async def install_rules(store: Store, achievements: Sequence[Achievement]) -> Installed:
    """Make the catalogue in the database what the file says: add and update the
    declared achievements (un-retiring one that comes back), retire the others.
    Retired, never deleted: people keep what they earned."""
    async with store.connection("install achievements") as conn, conn.transaction():
        await conn.execute("LOCK TABLE achievements IN SHARE ROW EXCLUSIVE MODE")
        return await _install(conn, achievements)


async def _install(conn: asyncpg.Connection, achievements: Sequence[Achievement]) -> Installed:
    """The install itself, in the caller's transaction (holding the table lock)."""
    ids = [a.id for a in achievements]
    added: list[str] = []
    updated: list[str] = []
    for a in achievements:
        conditions = json.dumps(msgspec.to_builtins(a.conditions))
        row = await conn.fetchrow(
            """
            INSERT INTO achievements (id, name, description, icon, xp, rarity, conditions)
            VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
            ON CONFLICT (id) DO UPDATE SET
                name = EXCLUDED.name, description = EXCLUDED.description,
                icon = EXCLUDED.icon, xp = EXCLUDED.xp, rarity = EXCLUDED.rarity,
                conditions = EXCLUDED.conditions, retired_at = NULL
            WHERE (achievements.name, achievements.description, achievements.icon,
                   achievements.xp, achievements.rarity, achievements.conditions,
                   achievements.retired_at IS NULL)
               IS DISTINCT FROM
                  (EXCLUDED.name, EXCLUDED.description, EXCLUDED.icon, EXCLUDED.xp,
                   EXCLUDED.rarity, EXCLUDED.conditions, true)
            RETURNING (xmax = 0) AS inserted
            """,
            a.id,
            a.name,
            a.description,
            a.icon,
            a.xp,
            a.rarity,
            conditions,
        )
        if row is not None:
            (added if row["inserted"] else updated).append(a.id)
    retired = await conn.fetch(
        "UPDATE achievements SET retired_at = now() "
        "WHERE retired_at IS NULL AND NOT (id = ANY($1::text[])) RETURNING id",
        ids,
    )
    return Installed(added, updated, sorted(r["id"] for r in retired))


async def metric_values(
    conn: asyncpg.Connection, user_id: uuid.UUID, metrics: Iterable[str]
) -> dict[str, int]:
    """The person's current value of each metric, in one round trip."""
    names = sorted(set(metrics))
    if not names:
        return {}
    rows = await conn.fetch(
        "SELECT m, progress_metric($1, m) AS value FROM unnest($2::text[]) AS m", user_id, names
    )
    return {r["m"]: int(r["value"]) for r in rows}


def achievement_awards(rows: Iterable[asyncpg.Record]) -> tuple[list[str], list[PointAward]]:
    """The ids awarded and their point awards, from ``progress_evaluate`` rows."""
    awarded: list[str] = []
    awards: list[PointAward] = []
    for row in rows:
        awarded.append(row["awarded"])
        if row["wanted"]:
            awards.append(
                PointAward(
                    "achievement", row["granted"], row["wanted"], f"achievement {row['awarded']}"
                )
            )
    return awarded, awards


async def evaluate(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID,
    touched: Iterable[str],
    event_id: int,
    day: Any,
    at: datetime | None,
    only: str | None = None,
) -> tuple[list[str], list[PointAward]]:
    """Update progress towards the active achievements that use a touched metric
    and award those now met (with their XP), inside the caller's transaction, with
    the person already locked: the database's ``progress_evaluate``. Returns the
    ids awarded and their point awards.

    Progress may go down (after a reversal); an award, once made, stays.
    """
    touched = sorted(set(touched))
    if not touched:
        return [], []
    rows = await conn.fetch(
        "SELECT * FROM progress_evaluate($1, $2::text[], $3, $4, $5, $6)",
        user_id,
        touched,
        event_id,
        day,
        at,
        only,
    )
    return achievement_awards(rows)


async def install_default_rules(store: Store) -> Installed | None:
    """Install the shipped catalogue on a database that has none yet (a fresh server).

    Only when empty: a catalogue an operator loaded with ``achievements load``
    (or retired) stays as they left it across restarts. The check happens
    under the same table lock as the install, so two processes starting
    together install it once.
    """
    async with store.connection("install default achievements") as conn, conn.transaction():
        await conn.execute("LOCK TABLE achievements IN SHARE ROW EXCLUSIVE MODE")
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM achievements)"):
            return None
        return await _install(conn, load_rules(DEFAULT_RULES))


async def backfill(
    store: Store, achievement_id: str | None = None, *, now: datetime | None = None
) -> dict[str, list[uuid.UUID]]:
    """Award achievements (one, or every active one) to everyone who already qualifies.

    For a newly added achievement: incremental evaluation only looks at people
    when they act, so those who qualified before it existed get it here. Each
    award is an ``achievement.backfilled`` event with the key
    ``backfill:<achievement>:<user>``, so running this twice (or alongside the
    live event path, which takes the same per-person lock) awards nothing more.
    Returns, per achievement id, the people awarded by this call.
    """
    async with store.connection("backfill achievements") as conn:
        ids = [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM achievements WHERE retired_at IS NULL "
                "AND ($1::text IS NULL OR id = $1) ORDER BY id",
                achievement_id,
            )
        ]
        if achievement_id is not None and not ids:
            raise RulesError(f"no active achievement {achievement_id!r}")
        users = [r["id"] for r in await conn.fetch("SELECT id FROM users ORDER BY id")]
    result: dict[str, list[uuid.UUID]] = {i: [] for i in ids}
    for ach in ids:
        for user_id in users:
            async with store.connection("backfill achievement") as conn, conn.transaction():
                await lock_person(conn, user_id)
                if await conn.fetchval(
                    "SELECT awarded_at IS NOT NULL FROM user_achievements "
                    "WHERE user_id = $1 AND achievement_id = $2",
                    user_id,
                    ach,
                ):
                    continue
                conditions = json.loads(
                    await conn.fetchval("SELECT conditions FROM achievements WHERE id = $1", ach)
                )
                values = await metric_values(conn, user_id, {c["metric"] for c in conditions})
                if not all(values[c["metric"]] >= c["at_least"] for c in conditions):
                    progress = {
                        c["metric"]: {"value": values[c["metric"]], "target": c["at_least"]}
                        for c in conditions
                    }
                    await conn.execute(
                        """
                        INSERT INTO user_achievements (user_id, achievement_id, progress)
                        VALUES ($1, $2, $3::jsonb)
                        ON CONFLICT (user_id, achievement_id)
                        DO UPDATE SET progress = EXCLUDED.progress
                        """,
                        user_id,
                        ach,
                        json.dumps(progress),
                    )
                    continue
                row = await conn.fetchrow(
                    """
                    INSERT INTO progress_events
                        (idempotency_key, user_id, type, payload, occurred_at)
                    SELECT $1, u.id, 'achievement.backfilled', $3::jsonb, COALESCE($4, now())
                    FROM users u WHERE u.id = $2
                    ON CONFLICT (idempotency_key) DO NOTHING
                    RETURNING id, occurred_at,
                        (occurred_at AT TIME ZONE
                            (SELECT time_zone FROM users WHERE id = $2))::date AS day
                    """,
                    f"backfill:{ach}:{user_id}",
                    user_id,
                    json.dumps({"achievement_id": ach}),
                    now,
                )
                if row is None:
                    continue
                awarded, _ = await evaluate(
                    conn,
                    user_id=user_id,
                    touched={c["metric"] for c in conditions},
                    event_id=row["id"],
                    day=row["day"],
                    at=row["occurred_at"],
                    only=ach,
                )
                if awarded:
                    result[ach].append(user_id)
    return result
