"""Plain values the store hands back: no asyncpg types leak past the package."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal


@dataclass(frozen=True, slots=True)
class RoomRecord:
    """A stored room: its latest snapshot and the log tail after it.

    Applying ``snapshot`` and then every update of ``updates`` in order gives
    the room's document as of ``last_seq``.
    """

    snapshot: bytes | None
    snapshot_seq: int
    updates: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def last_seq(self) -> int:
        """Sequence number of the newest update this record covers."""
        return self.updates[-1][0] if self.updates else self.snapshot_seq

    def as_updates(self) -> list[bytes]:
        """The Yjs updates to apply, in order: snapshot first, then the tail."""
        head = [self.snapshot] if self.snapshot is not None else []
        return head + [update for _, update in self.updates]


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """A named version without its state: what a listing needs."""

    id: int
    room_id: str
    name: str
    upto_seq: int
    created_at: datetime
    created_by: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class Version(VersionInfo):
    """A named version with its state (a Yjs update that rebuilds the document)."""

    state: bytes


@dataclass(frozen=True, slots=True)
class RoomInfo:
    """A room's stored rules and description."""

    id: str
    title: str
    owner: uuid.UUID | None
    visibility: str
    cohort: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Member:
    """A member of a room, with the name their user row has."""

    user_id: uuid.UUID
    username: str
    display_name: str
    role: str
    added_at: datetime


@dataclass(frozen=True, slots=True)
class RoomStanding:
    """One person's standing in a room: the room's rules and their member role."""

    owner: uuid.UUID | None
    visibility: str
    cohort: str | None
    member_role: str | None = None


@dataclass(frozen=True, slots=True)
class DemoInfo:
    """A demo in the library, without its document."""

    id: str
    title: str
    kind: str
    created_at: datetime
    updated_at: datetime


# -- questions, quiz answers and demo progress (issue 7) ----------------------------------------


@dataclass(frozen=True, slots=True)
class Question:
    """A question about a demo in a room, with its asker's display name and vote count."""

    id: int
    room_id: str
    demo_id: str
    step_id: str | None
    at: float | None
    text: str
    asked_by: uuid.UUID
    by_name: str
    votes: int
    answered: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class VoteResult:
    """What a vote did: ``voted``/``withdrawn`` changed the count, ``unchanged`` did not
    (a second vote, or withdrawing none), ``own`` and ``missing`` were refused."""

    status: Literal["voted", "withdrawn", "unchanged", "own", "missing"]
    question: Question | None = None


@dataclass(frozen=True, slots=True)
class QuizCount:
    """How many answered a step's question with ``choice`` (None: free text), and how
    many of those were right."""

    step_id: str
    choice: int | None
    answers: int
    correct: int


@dataclass(frozen=True, slots=True)
class DemoProgress:
    """How far one person got in a demo; ``username``/``display_name`` in staff listings."""

    user_id: uuid.UUID
    demo_id: str
    position: float
    step_id: str | None
    fraction: float
    completed: bool
    updated_at: datetime
    username: str = ""
    display_name: str = ""
