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
    """Grant up to ``wanted`` points within the day's cap, write the ledger row and add
    to the person's total: the database's ``progress_grant`` (migration 0010), one
    round trip. A row is written even when the cap leaves nothing, so that the
    ledger says why an event earned less than the rules would give.
    """
    granted = await conn.fetchval(
        "SELECT progress_grant($1, $2, $3, $4, $5, $6, $7::jsonb, $8)",
        user_id,
        event_id,
        day,
        type,
        wanted,
        reason,
        json.dumps(metadata or {}),
        at,
    )
    return PointAward(type, granted, wanted, reason)
