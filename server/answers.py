"""Questions with their answers, as the room's question lists need them (migration 0011).

Any participant may answer someone else's question; the asker, or course
staff, accepts one answer, once (a partial unique index makes "one accepted
answer per question" the database's rule, not only ours). Each function is one
transaction with the question's row locked, so an answer and an acceptance
racing on the same question take turns.

``list_questions`` reads a room's questions about a demo together with their
answers and who upvoted each, in ONE query: the question service shares its
result between every joiner until something changes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg

from store import Store
from store.records import Question

#: Most answers one question takes (a list must stay a bounded message).
MAX_ANSWERS = 20


@dataclass(frozen=True, slots=True)
class Answer:
    id: int
    text: str
    user_id: uuid.UUID
    by_name: str
    accepted: bool
    #: Server time (ms since the epoch) it was given.
    created_ms: float


@dataclass(frozen=True, slots=True)
class QuestionView:
    """A question, its answers (oldest first) and the people who upvoted it."""

    question: Question
    answers: tuple[Answer, ...] = ()
    voters: tuple[uuid.UUID, ...] = field(default=())


_VIEW = """
SELECT q.id, q.room_id, q.demo_id, q.step_id, q.at, q.text, q.asked_by,
       u.display_name AS by_name, q.votes, q.answered, q.created_at,
       ARRAY(SELECT v.user_id FROM question_votes v WHERE v.question_id = q.id) AS voters,
       COALESCE((
           SELECT json_agg(json_build_object(
                      'id', a.id, 'text', a.text, 'user', a.answered_by,
                      'by', au.display_name, 'accepted', a.accepted_at IS NOT NULL,
                      'created', extract(epoch FROM a.created_at) * 1000)
                  ORDER BY a.created_at, a.id)
           FROM question_answers a JOIN users au ON au.id = a.answered_by
           WHERE a.question_id = q.id), '[]') AS answers
FROM questions q JOIN users u ON u.id = q.asked_by
"""

#: Listing order as the store's: unanswered first, most voted, oldest.
_LIST = (
    _VIEW
    + """
WHERE q.room_id = $1 AND q.demo_id = $2
ORDER BY q.answered, q.votes DESC, q.created_at, q.id
LIMIT $3
"""
)

_ONE = _VIEW + "WHERE q.id = $1 AND q.room_id = $2"

_QUESTION_FIELDS = (
    "id",
    "room_id",
    "demo_id",
    "step_id",
    "at",
    "text",
    "asked_by",
    "by_name",
    "votes",
    "answered",
    "created_at",
)


def _view(row: asyncpg.Record) -> QuestionView:
    raw: list[dict[str, Any]] = json.loads(row["answers"])
    answers = tuple(
        Answer(
            id=a["id"],
            text=a["text"],
            user_id=uuid.UUID(a["user"]),
            by_name=a["by"],
            accepted=a["accepted"],
            created_ms=float(a["created"]),
        )
        for a in raw
    )
    question = Question(**{name: row[name] for name in _QUESTION_FIELDS})
    return QuestionView(question, answers, tuple(row["voters"]))


async def list_questions(
    store: Store, room_id: str, demo_id: str, limit: int
) -> list[QuestionView]:
    """A room's questions about a demo with answers and voters, in listing order."""
    async with store.connection("list questions") as conn:
        rows = await conn.fetch(_LIST, room_id, demo_id, limit)
    return [_view(row) for row in rows]


async def get_question(store: Store, room_id: str, question_id: int) -> QuestionView | None:
    async with store.connection("read question") as conn:
        row = await conn.fetchrow(_ONE, question_id, room_id)
    return _view(row) if row is not None else None


AnswerStatus = Literal["answered", "missing", "own", "full"]


async def add_answer(
    store: Store, room_id: str, question_id: int, user_id: uuid.UUID, text: str
) -> tuple[AnswerStatus, QuestionView | None]:
    """Store an answer (text already checked) to a question of this room by someone
    other than its asker; the question as it now stands."""
    async with store.connection("answer question") as conn, conn.transaction():
        asker = await conn.fetchval(
            "SELECT asked_by FROM questions WHERE id = $1 AND room_id = $2 FOR UPDATE",
            question_id,
            room_id,
        )
        if asker is None:
            return "missing", None
        if asker == user_id:
            return "own", None
        count = await conn.fetchval(
            "SELECT count(*) FROM question_answers WHERE question_id = $1", question_id
        )
        if count >= MAX_ANSWERS:
            return "full", None
        await conn.execute(
            "INSERT INTO question_answers (question_id, text, answered_by) VALUES ($1, $2, $3)",
            question_id,
            text,
            user_id,
        )
        row = await conn.fetchrow(_ONE, question_id, room_id)
    return "answered", _view(row)


AcceptStatus = Literal["accepted", "unchanged", "missing", "forbidden", "no-answer", "taken"]


@dataclass(frozen=True, slots=True)
class Accepted:
    status: AcceptStatus
    view: QuestionView | None = None
    #: Who asked, and who wrote the accepted answer.
    asker: uuid.UUID | None = None
    author: uuid.UUID | None = None


async def accept_answer(
    store: Store,
    room_id: str,
    question_id: int,
    answer_id: int,
    by: uuid.UUID,
    *,
    staff: bool,
) -> Accepted:
    """Accept one answer of a question (its asker, or ``staff``); marks it answered.

    Acceptance is final: accepting the accepted answer again is ``unchanged``,
    another one ``taken``.
    """
    async with store.connection("accept answer") as conn, conn.transaction():
        asker = await conn.fetchval(
            "SELECT asked_by FROM questions WHERE id = $1 AND room_id = $2 FOR UPDATE",
            question_id,
            room_id,
        )
        if asker is None:
            return Accepted("missing")
        if asker != by and not staff:
            return Accepted("forbidden")
        author = await conn.fetchval(
            "SELECT answered_by FROM question_answers WHERE id = $1 AND question_id = $2",
            answer_id,
            question_id,
        )
        if author is None:
            return Accepted("no-answer")
        before = await conn.fetchval(
            "SELECT id FROM question_answers WHERE question_id = $1 AND accepted_at IS NOT NULL",
            question_id,
        )
        if before is None:
            await conn.execute(
                "UPDATE question_answers SET accepted_at = now() WHERE id = $1", answer_id
            )
            await conn.execute("UPDATE questions SET answered = true WHERE id = $1", question_id)
        row = await conn.fetchrow(_ONE, question_id, room_id)
    if before is not None and before != answer_id:
        return Accepted("taken", _view(row), asker, author)
    status: AcceptStatus = "accepted" if before is None else "unchanged"
    return Accepted(status, _view(row), asker, author)
