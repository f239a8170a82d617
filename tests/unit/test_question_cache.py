"""The question service's cached lists across nodes, with a fake store read and room.

What matters: a node that changes a list tells the other nodes before it broadcasts
the change; a notice from another node drops the cached list; a read that a notice
overtook is read again (never cached stale); a shared room's list is not used past
``SHARED_LISTING_SECONDS`` (a lost notice is bounded).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from rooms import Person, RoomLimits, RoomRole
from rooms.extension import QuestionAnswered
from server import questions
from server.answers import QuestionView
from server.questions import Notice, QuestionService
from store.records import Question


def view(qid: int, text: str) -> QuestionView:
    return QuestionView(
        Question(
            id=qid,
            room_id="class",
            demo_id="loops",
            step_id=None,
            at=None,
            text=text,
            asked_by=uuid.UUID(int=7),
            by_name="Sam",
            votes=0,
            answered=False,
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
    )


class FakeRoom:
    def __init__(self, shared: bool = True) -> None:
        self.id = "class"
        self.limits = RoomLimits()
        self.cluster: object | None = object() if shared else None
        self.sent: list[tuple[str, bytes]] = []
        self.broadcasts: list[Any] = []
        self.order: list[str] = []

    def send_service(self, tag: str, payload: bytes) -> bool:
        self.sent.append((tag, payload))
        self.order.append("service")
        return self.cluster is not None

    def broadcast_room(self, message: Any) -> None:
        self.broadcasts.append(message)
        self.order.append("broadcast")


class Reads:
    """Stands in for ``answers.list_questions``: what Postgres holds, and a hook run
    while a read is on its way (a notice arriving from another node meanwhile)."""

    def __init__(self) -> None:
        self.rows: list[QuestionView] = []
        self.count = 0
        self.during: list[Any] = []

    async def __call__(self, store: object, room_id: str, demo_id: str, limit: int) -> Any:
        self.count += 1
        rows = list(self.rows)  # the read's snapshot
        await asyncio.sleep(0)
        if self.during:
            self.during.pop(0)()
        return rows


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    fake = Reads()
    monkeypatch.setattr(questions.answers, "list_questions", fake)
    return fake


def service() -> QuestionService:
    return QuestionService(store=object(), library=object())  # type: ignore[arg-type]


def notice(kind: str, demo: str = "loops", step: str = "") -> bytes:
    return questions._notice_encoder.encode(Notice(kind, demo, step))


async def test_a_notice_from_another_node_drops_the_cached_list(reads: Reads) -> None:
    qs, room = service(), FakeRoom()
    reads.rows = [view(1, "first")]
    listing = await qs._listing(room, "loops")  # type: ignore[arg-type]
    assert [i.text for i in listing.items] == ["first"]
    await qs._listing(room, "loops")  # type: ignore[arg-type]
    assert reads.count == 1  # shared by the next joiner
    reads.rows.append(view(2, "asked on the other node"))
    qs.remote(room, notice("list"))  # type: ignore[arg-type]
    listing = await qs._listing(room, "loops")  # type: ignore[arg-type]
    assert [i.text for i in listing.items] == ["first", "asked on the other node"]
    assert reads.count == 2
    # another demo's notice leaves this list alone; a garbled one is ignored
    qs.remote(room, notice("list", demo="hello"))  # type: ignore[arg-type]
    qs.remote(room, b"\xff not msgpack")  # type: ignore[arg-type]
    await qs._listing(room, "loops")  # type: ignore[arg-type]
    assert reads.count == 2


async def test_a_read_overtaken_by_a_notice_is_read_again_not_cached(reads: Reads) -> None:
    qs, room = service(), FakeRoom()
    reads.rows = [view(1, "first")]

    def meanwhile() -> None:  # committed elsewhere while the read was on its way
        reads.rows.append(view(2, "second"))
        qs.remote(room, notice("list"))  # type: ignore[arg-type]

    reads.during = [meanwhile]
    listing = await qs._listing(room, "loops")  # type: ignore[arg-type]
    assert [i.text for i in listing.items] == ["first", "second"]
    assert reads.count == 2
    await qs._listing(room, "loops")  # type: ignore[arg-type]
    assert reads.count == 2  # the second read was kept


async def test_a_shared_room_s_list_is_used_for_a_bounded_time(reads: Reads) -> None:
    now = [100.0]
    for shared, expected in ((True, 2), (False, 1)):
        qs, room = service(), FakeRoom(shared=shared)
        qs.clock = lambda: now[0]
        reads.count = 0
        await qs._listing(room, "loops")  # type: ignore[arg-type]
        now[0] += questions.SHARED_LISTING_SECONDS + 0.1
        await qs._listing(room, "loops")  # type: ignore[arg-type]
        assert reads.count == expected, shared


class MarkingStore:
    async def mark_answered(self, room_id: str, question_id: int, answered: bool) -> Question:
        return view(question_id, "marked").question


async def test_a_change_is_told_to_the_other_nodes_before_it_is_broadcast(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bus keeps one node's messages to a room in order: a node drops its list
    before its people see the changed item."""

    async def get_question(store: object, room_id: str, question_id: int) -> QuestionView:
        return view(question_id, "marked")

    monkeypatch.setattr(questions.answers, "get_question", get_question)
    qs = QuestionService(store=MarkingStore(), library=object())  # type: ignore[arg-type]
    room = FakeRoom()
    ines = SimpleNamespace(
        person=Person(uuid.UUID(int=9), "Ines", "instructor"), role=RoomRole.OWNER
    )
    job = qs._answered(room, ines, QuestionAnswered(id=3, answered=True))  # type: ignore[arg-type]
    await job()
    assert room.order == ["service", "broadcast"]
    ((tag, payload),) = room.sent
    assert tag == "questions"
    assert questions._notice_decoder.decode(payload) == Notice("list", "loops")
