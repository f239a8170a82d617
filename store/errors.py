"""What the store raises, so callers can tell an outage from a mistake.

The write path must not forward an update that is not durable, and must keep
the room alive while the database is away; it can only do both if "the
database is unreachable" is one exception type, whatever asyncpg or the
socket layer raised underneath.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error the store raises on purpose."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or cannot take writes right now; retry later.

    After an append raised this, the batch may or may not have been committed
    (the connection can break after the commit and before the answer):
    callers that retry must tolerate seeing an update twice, which Yjs does.
    """


class MigrationError(StoreError):
    """The schema cannot be brought up to date safely; the message says why."""


class RoomNotFound(StoreError, KeyError):
    """The room has never been stored."""

    def __init__(self, room_id: str) -> None:
        super().__init__(room_id)
        self.room_id = room_id

    def __str__(self) -> str:
        return f"room {self.room_id!r} is not stored"
