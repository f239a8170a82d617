"""Questions and quizzes at the real server: ask, vote, mark answered, answer quizzes.

The room is public: the students in it are viewers, Ines (an instructor)
owns it and presents the example walkthrough ``python-loops``, whose step
``range`` asks a multiple-choice question (answer: choice 0) and step
``while`` a free-text one with no right answer.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from pycrdt import Text

from tests.pyclient import YClient, eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "demos" / "examples"
LOOPS = EXAMPLES / "python-loops.demo.json"
RECORDING = EXAMPLES / "hello-recording.demo.json"

INES = {"user_id": "ines", "name": "Ines", "role": "instructor"}
TOM = {"user_id": "tom", "name": "Tom", "role": "teaching_assistant"}
SAM = {"user_id": "sam", "name": "Sam", "cohort": "2026-a"}
BEA = {"user_id": "bea", "name": "Bea", "cohort": "2026-b"}
OLIVE = {"user_id": "olive", "name": "Olive", "cohort": "2026-a"}  # an editor, not staff


def test_the_example_walkthrough_asks_what_these_tests_expect() -> None:
    steps = {s["id"]: s.get("question") for s in json.loads(LOOPS.read_text())["steps"]}
    assert steps["range"] == {
        "prompt": "What is the last number `range(3)` prints?",
        "choices": ["2", "3"],
        "answer": 0,
    }
    assert "choices" not in steps["while"] and "answer" not in steps["while"]
    assert steps["for-list"] is None


class Room:
    """A public room owned by Ines with the demos published, and the people in it."""

    def __init__(self, server: Any, tokens: Any, room_id: str) -> None:
        self.server = server
        self.tokens = tokens
        self.id = room_id
        self.open: list[tuple[YClient, aiohttp.ClientSession]] = []

    async def setup(self) -> None:
        async with aiohttp.ClientSession(headers=self.tokens.auth(**INES)) as staff:
            for demo_id, path in (("loops", LOOPS), ("hello", RECORDING)):
                async with staff.put(
                    f"{self.server.http}/api/demos/{demo_id}", data=path.read_bytes()
                ) as r:
                    assert r.status in (200, 201), await r.text()
            async with staff.post(
                f"{self.server.http}/api/rooms", json={"id": self.id, "visibility": "public"}
            ) as r:
                assert r.status == 201, await r.text()
            async with staff.put(
                f"{self.server.http}/api/rooms/{self.id}/members/olive", json={"role": "editor"}
            ) as r:
                assert r.status == 200, await r.text()

    async def join(self, who: dict[str, Any]) -> YClient:
        session = aiohttp.ClientSession()
        token = self.tokens.token(**who)
        client = YClient(session, f"{self.server.ws}/rooms/{self.id}?ext=1&token={token}")
        await client.connect()
        await client.wait_synced()
        await eventually(lambda: any(m["type"] == "hello" for m in client.room_messages))
        self.open.append((client, session))
        return client

    async def load(self, presenter: YClient, demo_id: str, *watchers: YClient) -> None:
        await presenter.send_room({"type": "demo", "action": "load", "demo": demo_id})
        for client in (presenter, *watchers):
            await eventually(
                lambda c=client: any(
                    m["type"] == "demo.state" and m["demo"] == demo_id for m in c.room_messages
                ),
                what=f"{demo_id} loaded",
            )

    async def http(self, who: dict[str, Any], path: str) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession(headers=self.tokens.auth(**who)) as s,
            s.get(f"{self.server.http}/api/rooms/{self.id}{path}") as r,
        ):
            return r.status, await r.json()

    async def close(self) -> None:
        for client, session in self.open:
            await client.close()
            await session.close()


@pytest.fixture
async def room(server, tokens):
    made = Room(server, tokens, "class")
    await made.setup()
    yield made
    await made.close()


def of_type(client: YClient, kind: str) -> list[dict[str, Any]]:
    return [m for m in client.room_messages if m["type"] == kind]


def notices(client: YClient) -> list[dict[str, Any]]:
    return of_type(client, "notice")


async def item_seen(client: YClient, **fields: Any) -> dict[str, Any]:
    """The latest ``question`` message matching ``fields``, once it arrived."""

    def match() -> list[dict[str, Any]]:
        return [
            m for m in of_type(client, "question") if all(m.get(k) == v for k, v in fields.items())
        ]

    await eventually(lambda: bool(match()), what=f"question {fields}")
    return match()[-1]


async def refused(client: YClient, body: dict[str, Any], code: str) -> str:
    """Send ``body``; the next notice the client gets must have ``code``. Its text."""
    before = len(notices(client))
    await client.send_room(body)
    await eventually(lambda: len(notices(client)) > before, what=f"{code} notice")
    notice = notices(client)[before]
    assert (notice["level"], notice["code"]) == ("error", code), notice
    return notice["text"]


async def test_ask_vote_withdraw_and_mark_answered(room: Room) -> None:
    ines = await room.join(INES)
    sam = await room.join(SAM)
    bea = await room.join(BEA)
    olive = await room.join(OLIVE)
    everyone = (ines, sam, bea, olive)
    await room.load(ines, "loops", sam, bea, olive)

    # a viewer asks: it attaches to where the room is (step 0, "for-list")
    await sam.send_room({"type": "question.ask", "text": "  Why a list?  "})
    for client in everyone:
        q1 = await item_seen(client, text="Why a list?")
    assert (q1["by"], q1["votes"], q1["answered"], q1["step"], q1["demo"]) == (
        "Sam",
        0,
        False,
        "for-list",
        "loops",
    )
    assert q1["at"] is None and q1["created"] > 0

    await ines.send_room({"type": "demo", "action": "seek", "step": "range"})
    await eventually(lambda: any(m.get("position") == 2.0 for m in of_type(bea, "demo.state")))
    await bea.send_room({"type": "question.ask", "text": "Does range include 3?"})
    q2 = await item_seen(sam, text="Does range include 3?")
    assert q2["step"] == "range"  # where the presenter is now
    await sam.send_room({"type": "question.ask", "text": "Can a loop never end?", "step": "while"})
    q3 = await item_seen(bea, text="Can a loop never end?")
    assert q3["step"] == "while"  # the step given wins over the room's position
    await bea.send_room({"type": "question.ask", "text": "Is for faster?"})
    q4 = await item_seen(ines, text="Is for faster?")
    await ines.send_room({"type": "question.ask", "text": "Any other loops?"})
    q5 = await item_seen(sam, text="Any other loops?")
    assert q1["id"] < q2["id"] < q3["id"] < q4["id"] < q5["id"]

    # votes: one per person, broadcast with the new count
    await bea.send_room({"type": "question.vote", "id": q1["id"]})
    await item_seen(sam, id=q1["id"], votes=1)
    await ines.send_room({"type": "question.vote", "id": q1["id"], "up": True})
    for client in everyone:
        await item_seen(client, id=q1["id"], votes=2)
    # a second vote by the same person changes nothing: told to the voter only
    before = len(of_type(sam, "question"))
    seen_by_bea = len(of_type(bea, "question"))
    await bea.send_room({"type": "question.vote", "id": q1["id"]})
    await eventually(
        lambda: len(of_type(bea, "question")) > seen_by_bea, what="unchanged vote answered"
    )
    assert of_type(bea, "question")[-1]["votes"] == 2
    # withdrawing takes one off
    await bea.send_room({"type": "question.vote", "id": q1["id"], "up": False})
    await eventually(lambda: len(of_type(sam, "question")) > before, what="withdrawal")
    assert [(m["id"], m["votes"]) for m in of_type(sam, "question")[before:]] == [(q1["id"], 1)]
    # nobody votes for their own question
    text = await refused(sam, {"type": "question.vote", "id": q1["id"]}, "bad-question")
    assert "your own question" in text
    for voter in (sam, ines):
        await voter.send_room({"type": "question.vote", "id": q2["id"]})
    await item_seen(bea, id=q2["id"], votes=2)
    for voter in (bea, ines):
        await voter.send_room({"type": "question.vote", "id": q3["id"]})
    await item_seen(sam, id=q3["id"], votes=2)

    # marking answered: course staff who can edit only (a student editor is refused too)
    for student in (sam, olive):
        text = await refused(
            student, {"type": "question.answered", "id": q2["id"]}, "permission-denied"
        )
        assert "instructor or teaching assistant" in text
    assert not any(m["answered"] for m in of_type(bea, "question"))
    await ines.send_room({"type": "question.answered", "id": q2["id"]})
    await item_seen(bea, id=q2["id"], answered=True, votes=2)

    # the listing: unanswered first, most voted, oldest; answered last
    status, body = await room.http(BEA, "/questions?demo=loops")
    assert status == 200, body
    assert [q["id"] for q in body["questions"]] == [
        q3["id"],
        q1["id"],
        q4["id"],
        q5["id"],
        q2["id"],
    ]
    assert [q["votes"] for q in body["questions"]] == [2, 1, 0, 0, 2]
    assert body["voted"] == [q3["id"]]  # Bea withdrew her vote on q1
    first = body["questions"][0]
    assert (first["text"], first["by"], first["step"], first["answered"]) == (
        "Can a loop never end?",
        "Sam",
        "while",
        False,
    )
    status, body = await room.http(SAM, "/questions?demo=loops")
    assert body["voted"] == [q2["id"]]
    status, body = await room.http(SAM, "/questions?demo=hello")
    assert (status, body["questions"]) == (200, [])
    status, body = await room.http(SAM, "/questions")
    assert status == 400 and "demo" in body["error"]

    # a late joiner gets the list in that order, with their own votes
    late = await room.join(BEA)
    await eventually(lambda: bool(of_type(late, "questions")), what="questions on joining")
    listed = of_type(late, "questions")[-1]
    assert listed["demo"] == "loops"
    assert [q["id"] for q in listed["items"]] == [q3["id"], q1["id"], q4["id"], q5["id"], q2["id"]]
    assert listed["voted"] == [q3["id"]]
    kinds = [m["type"] for m in late.room_messages]
    assert kinds.index("hello") < kinds.index("demo.state") < kinds.index("questions")
    assert not of_type(late, "quiz.tally")  # a student sees no tallies

    # a private room's questions are not for outsiders
    async with aiohttp.ClientSession(headers=room.tokens.auth(**SAM)) as s:
        async with s.post(f"{room.server.http}/api/rooms", json={"id": "sams"}) as r:
            assert r.status == 201
    async with (
        aiohttp.ClientSession(headers=room.tokens.auth(**BEA)) as s,
        s.get(f"{room.server.http}/api/rooms/sams/questions?demo=loops") as r,
    ):
        assert r.status == 403


async def test_a_question_in_a_recording_attaches_to_the_time(room: Room) -> None:
    ines = await room.join(INES)
    sam = await room.join(SAM)
    await room.load(ines, "hello", sam)
    await sam.send_room({"type": "question.ask", "text": "What is echo?"})
    q = await item_seen(ines, text="What is echo?")
    assert (q["step"], q["at"]) == (None, 0.0)  # paused at the start
    await sam.send_room({"type": "question.ask", "text": "And here?", "at": 1.5})
    q = await item_seen(ines, text="And here?")
    assert (q["step"], q["at"]) == (None, 1.5)
    text = await refused(
        sam, {"type": "question.ask", "text": "x", "step": "range"}, "bad-question"
    )
    assert "no step 'range'" in text
    # loading another demo sends everyone that demo's questions (none yet)
    await room.load(ines, "loops", sam)
    await eventually(lambda: any(m["demo"] == "loops" for m in of_type(sam, "questions")))
    assert [m["items"] for m in of_type(sam, "questions") if m["demo"] == "loops"] == [[]]
    # and back: the recording's questions, the oldest first
    await room.load(ines, "hello", sam)
    await eventually(
        lambda: len([m for m in of_type(sam, "questions") if m["demo"] == "hello"]) >= 2
    )
    latest = [m for m in of_type(sam, "questions") if m["demo"] == "hello"][-1]
    assert [q["text"] for q in latest["items"]] == ["What is echo?", "And here?"]


async def test_quiz_answers_tally_to_staff_and_result_to_the_answerer(
    room: Room, database_url: str
) -> None:
    ines = await room.join(INES)
    sam = await room.join(SAM)
    bea = await room.join(BEA)
    olive = await room.join(OLIVE)
    await room.load(ines, "loops", sam, bea, olive)
    # on loading, staff get every question step's tally (none answered yet)
    await eventually(lambda: len(of_type(ines, "quiz.tally")) == 2, what="tallies on load")
    assert [(t["step"], t["counts"], t["total"]) for t in of_type(ines, "quiz.tally")] == [
        ("range", [0, 0], 0),
        ("while", [], 0),
    ]

    await sam.send_room({"type": "quiz.answer", "step": "range", "choice": 0})
    await eventually(lambda: bool(of_type(sam, "quiz.result")), what="Sam's result")
    assert of_type(sam, "quiz.result") == [
        {"type": "quiz.result", "step": "range", "correct": True}
    ]
    await eventually(lambda: len(of_type(ines, "quiz.tally")) == 3, what="tally to Ines")
    assert of_type(ines, "quiz.tally")[-1] == {
        "type": "quiz.tally",
        "demo": "loops",
        "step": "range",
        "counts": [1, 0],
        "total": 1,
        "correct": 1,
    }

    await bea.send_room({"type": "quiz.answer", "step": "range", "choice": 1})
    await eventually(lambda: bool(of_type(bea, "quiz.result")), what="Bea's result")
    assert of_type(bea, "quiz.result")[-1]["correct"] is False
    await eventually(lambda: len(of_type(ines, "quiz.tally")) == 4)
    assert of_type(ines, "quiz.tally")[-1]["counts"] == [1, 1]

    # Sam changes his mind: his earlier answer is replaced, not added to
    await sam.send_room({"type": "quiz.answer", "step": "range", "text": "3"})  # a choice's text
    await eventually(lambda: len(of_type(ines, "quiz.tally")) == 5)
    tally = of_type(ines, "quiz.tally")[-1]
    assert (tally["counts"], tally["total"], tally["correct"]) == ([0, 2], 2, 0)
    assert of_type(sam, "quiz.result")[-1] == {
        "type": "quiz.result",
        "step": "range",
        "correct": False,
    }

    # a free-text question without a right answer
    await bea.send_room({"type": "quiz.answer", "step": "while", "text": " it never stops "})
    await eventually(lambda: len(of_type(bea, "quiz.result")) == 2)
    assert of_type(bea, "quiz.result")[-1] == {
        "type": "quiz.result",
        "step": "while",
        "correct": None,
    }
    await eventually(lambda: len(of_type(ines, "quiz.tally")) == 6)
    assert of_type(ines, "quiz.tally")[-1] == {
        "type": "quiz.tally",
        "demo": "loops",
        "step": "while",
        "counts": [],
        "total": 1,
        "correct": 0,
    }
    # students, the editor student included, never see a tally
    for student in (sam, bea, olive):
        assert not of_type(student, "quiz.tally")
    assert not of_type(olive, "quiz.result")

    # a teaching assistant joining late gets the tallies after the questions
    tom = await room.join(TOM)
    await eventually(lambda: len(of_type(tom, "quiz.tally")) == 2, what="tallies on joining")
    kinds = [m["type"] for m in tom.room_messages]
    assert kinds.index("questions") < kinds.index("quiz.tally")
    assert [(t["step"], t["counts"], t["total"]) for t in of_type(tom, "quiz.tally")] == [
        ("range", [0, 2], 2),
        ("while", [], 1),
    ]

    # over HTTP: staff who can edit only
    status, body = await room.http(INES, "/quiz?demo=loops")
    assert status == 200, body
    assert body["steps"] == [
        {
            "step": "range",
            "prompt": "What is the last number `range(3)` prints?",
            "choices": ["2", "3"],
            "counts": [0, 2],
            "total": 2,
            "correct": 0,
        },
        {
            "step": "while",
            "prompt": "What happens if you remove `n -= 1`?",
            "choices": None,
            "counts": [],
            "total": 1,
            "correct": 0,
        },
    ]
    for student in (SAM, OLIVE):
        status, body = await room.http(student, "/quiz?demo=loops")
        assert status == 403 and "instructor or teaching assistant" in body["error"]
    status, body = await room.http(INES, "/quiz?demo=nope")
    assert status == 404

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT step_id, choice, text, correct FROM quiz_answers ORDER BY step_id, choice"
        )
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [
        ("range", 1, None, False),
        ("range", 1, None, False),
        ("while", None, "it never stops", None),
    ]


async def test_bad_input_gets_its_notice_and_nothing_is_stored(
    room: Room, database_url: str
) -> None:
    ines = await room.join(INES)
    sam = await room.join(SAM)

    # no demo loaded
    text = await refused(sam, {"type": "question.ask", "text": "Hello?"}, "bad-question")
    assert "no demo is loaded" in text
    await refused(sam, {"type": "quiz.answer", "step": "range", "choice": 0}, "bad-quiz-answer")

    await room.load(ines, "loops", sam)
    await eventually(lambda: bool(of_type(sam, "questions")), what="empty list on load")
    cases = [
        ({"type": "question.ask", "text": "   "}, "bad-question", "needs some text"),
        ({"type": "question.ask", "text": "x" * 2001}, "bad-question", "at most 2000"),
        ({"type": "question.ask", "text": "a\x00b"}, "bad-question", "NUL"),
        ({"type": "question.ask", "text": "x", "step": "nope"}, "bad-question", "no step"),
        ({"type": "question.ask", "text": "x", "at": 3.0}, "bad-question", "attach to a step"),
        ({"type": "question.vote", "id": 999999}, "bad-question", "no question 999999"),
        ({"type": "question.vote", "id": -1}, "bad-question", "no question -1"),
        ({"type": "quiz.answer", "step": "for-list", "choice": 0}, "bad-quiz-answer", "does not"),
        ({"type": "quiz.answer", "step": "nope", "choice": 0}, "bad-quiz-answer", "no step"),
        ({"type": "quiz.answer", "step": "range", "choice": 2}, "bad-quiz-answer", "out of range"),
        ({"type": "quiz.answer", "step": "range", "choice": -1}, "bad-quiz-answer", "out of"),
        ({"type": "quiz.answer", "step": "range"}, "bad-quiz-answer", "choice's index"),
        ({"type": "quiz.answer", "step": "range", "text": "4"}, "bad-quiz-answer", "choice"),
        ({"type": "quiz.answer", "step": "while", "choice": 0}, "bad-quiz-answer", "with text"),
        ({"type": "quiz.answer", "step": "while", "text": " "}, "bad-quiz-answer", "some text"),
        ({"type": "quiz.answer", "step": "while", "text": "\x00"}, "bad-quiz-answer", "NUL"),
        ({"type": "question.ask", "text": 5}, "bad-room-message", "text"),
        ({"type": "question.vote"}, "bad-room-message", "id"),
    ]
    for body, code, words in cases:
        text = await refused(sam, body, code)
        assert words in text, (body, text)
    text = await refused(ines, {"type": "question.answered", "id": 424242}, "bad-question")
    assert "no question 424242" in text

    conn = await asyncpg.connect(database_url)
    try:
        counts = [
            await conn.fetchval(f"SELECT count(*) FROM {table}")
            for table in ("questions", "question_votes", "quiz_answers")
        ]
    finally:
        await conn.close()
    assert counts == [0, 0, 0]
    assert not of_type(sam, "question") and not of_type(sam, "quiz.result")

    # the room and the socket are fine: a good question goes through, edits too
    assert not sam.closed.is_set()
    await sam.send_room({"type": "question.ask", "text": "Fine now?"})
    await item_seen(ines, text="Fine now?")
    ines.edit(lambda f: f.__setitem__("main.py", Text("ok\n")))
    await eventually(lambda: sam.text("main.py") == "ok\n", what="edits still flow")


async def test_a_database_outage_is_told_to_the_sender(server_factory, tokens, tmp_path) -> None:
    """On a Postgres this test starts and stops itself, never the machine's."""
    from store import EmbeddedPostgres

    embedded = EmbeddedPostgres(tmp_path / "pg")
    dsn = await embedded.start()
    made: Room | None = None
    try:
        server = server_factory(env={"DATABASE_URL": dsn})
        made = Room(server, tokens, "outage")
        await made.setup()
        ines = await made.join(INES)
        sam = await made.join(SAM)
        await made.load(ines, "loops", sam)
        await sam.send_room({"type": "question.ask", "text": "Before?"})
        q = await item_seen(ines, text="Before?")

        await embedded.stop()
        text = await refused(sam, {"type": "question.ask", "text": "During?"}, "unavailable")
        assert "cannot be read or saved now" in text
        await refused(ines, {"type": "question.vote", "id": q["id"]}, "unavailable")
        assert not any(m["text"] == "During?" for m in of_type(ines, "question"))
        assert not sam.closed.is_set()

        assert await embedded.start() == dsn
        for _ in range(50):  # the pool reconnects within a few tries
            seen, told = len(of_type(ines, "question")), len(notices(sam))
            await sam.send_room({"type": "question.ask", "text": "After?"})
            await eventually(
                lambda seen=seen, told=told: (
                    len(of_type(ines, "question")) > seen or len(notices(sam)) > told
                ),
                what="the question or a notice",
            )
            if any(m["text"] == "After?" for m in of_type(ines, "question")):
                break
            await asyncio.sleep(0.2)
        status, body = await made.http(SAM, "/questions?demo=loops")
        assert status == 200
        assert [x["text"] for x in body["questions"]][:2] == ["Before?", "After?"]
        assert "During?" not in [x["text"] for x in body["questions"]]
        assert all(x["votes"] == 0 for x in body["questions"])
    finally:
        if made is not None:
            await made.close()
        await embedded.stop()
