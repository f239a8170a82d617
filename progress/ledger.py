"""The low-level writes every award goes through: the person's lock and capped points.

Shared by the event path (events.py) and the achievement rules (rules.py), so
that there is exactly one way a point enters the ledger: through the daily
cap in the database, with the event it came from, and into the person's total.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg


@dataclass(frozen=True, slots=True)
class PointAward:
    """One row of the points ledger as the caller sees it.

    ``wanted`` is what the rules asked for, ``points`` what the daily cap let
    through (``points < wanted`` means the cap took the rest).
    """

    type: str
    points: int
    wanted: int
    reason: str


async def lock_person(conn: asyncpg.Connection, user_id: uuid.UUID) -> asyncpg.Record:
    """Take the person's user_stats row FOR UPDATE (creating it), inside the caller's
    transaction: a person's events then apply one at a time, from any process, while
    different people's events never wait for each other."""
    await conn.execute(
        "INSERT INTO user_stats (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING", user_id
    )
    return await conn.fetchrow("SELECT * FROM user_stats WHERE user_id = $1 FOR UPDATE", user_id)


async def grant(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID,
    event_id: int,
    day: date,
    type: str,
    wanted: int,
    reason: str,
    metadata: dict[str, Any] | None = None,
    at: Any = None,
) -> PointAward:
    """Grant up to ``wanted`` points within the day's cap (applied by the database's
    ``grant_capped_points``), write the ledger row and add to the person's total.

    A row is written even when the cap leaves nothing, so that the ledger says
    why an event earned less than the rules would give.
    """
    granted = await conn.fetchval(
        "SELECT grant_capped_points($1, $2, $3, $4)", user_id, day, type, wanted
    )
    await conn.execute(
        """
        INSERT INTO user_points
            (user_id, type, points, wanted, reason, metadata, event_id, day, created_at)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, COALESCE($9, now()))
        """,
        user_id,
        type,
        granted,
        wanted,
        reason,
        json.dumps(metadata or {}),
        event_id,
        day,
        at,
    )
    if granted:
        await conn.execute(
            "UPDATE user_stats SET xp = xp + $2 WHERE user_id = $1", user_id, granted
        )
    return PointAward(type, granted, wanted, reason)
