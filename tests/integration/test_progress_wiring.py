"""What the server observes in rooms becomes progress events (issue 8), end to end:
the real server, real Yjs clients, the progress ledger in a real Postgres, and a
real Docker Engine for runs.

The room ``lab`` is public and owned by Ines (an instructor); Sam, Bea and Olive
are students added as editors. Events are applied off the rooms' hot path, so
every check polls the database (or waits for the server's pending-events gauge
to reach zero before asserting that something did NOT happen).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from pycrdt import Text

from server.tokens import subject_uuid
from tests.pyclient import YClient, eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "demos" / "examples"
LOOPS = EXAMPLES / "python-loops.demo.json"
HELLO = EXAMPLES / "hello-recording.demo.json"  # a 2-second recording

INES = {"user_id": "ines", "name": "Ines", "role": "instructor"}
SAM = {"user_id": "sam", "name": "Sam"}
BEA = {"user_id": "bea", "name": "Bea"}
OLIVE = {"user_id": "olive", "name": "Olive"}
STUDENTS = (SAM, BEA, OLIVE)

#: A pairing minute lasts this long in these tests (server.pairing's test hook).
MINUTE = 0.5
RUN_FLAGS = ("--run-pool-warm", "1", "--run-wall-seconds", "5", "--run-memory-mb", "256")


def uid(who: dict[str, Any]) -> uuid.UUID:
    return subject_uuid(who["user_id"])


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 15.0, what: str = "") -> Any:
    """Poll an async ``check`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        await asyncio.sleep(0.05)


class Lab:
    """The server, its database and the people in room ``lab``."""

    def __init__(self, server: Any, dsn: str, tokens: Any) -> None:
        self.server = server
        self.dsn = dsn
        self.tokens = tokens
        self.open: list[tuple[YClient, aiohttp.ClientSession]] = []

    async def setup(self) -> None:
        async with aiohttp.ClientSession(headers=self.tokens.auth(**INES)) as staff:
            for demo_id, path in (("loops", LOOPS), ("hello", HELLO)):
                async with staff.put(
                    f"{self.server.http}/api/demos/{demo_id}", data=path.read_bytes()
                ) as r:
                    assert r.status in (200, 201), await r.text()
            async with staff.post(
                f"{self.server.http}/api/rooms", json={"id": "lab", "visibility": "public"}
            ) as r:
                assert r.status == 201, await r.text()
            for who in STUDENTS:
                async with staff.put(
                    f"{self.server.http}/api/rooms/lab/members/{who['user_id']}",
                    json={"role": "editor"},
                ) as r:
                    assert r.status == 200, await r.text()

    async def join(self, who: dict[str, Any]) -> YClient:
        session = aiohttp.ClientSession()
        token = self.tokens.token(**who)
        client = YClient(session, f"{self.server.ws}/rooms/lab?ext=1&token={token}")
        await client.connect()
        await client.wait_synced()
        await eventually(lambda: any(m["type"] == "hello" for m in client.room_messages))
        self.open.append((client, session))
        return client

    async def leave(self, client: YClient) -> None:
        for pair in self.open:
            if pair[0] is client:
                await client.close()
                await pair[1].close()
                self.open.remove(pair)
                return

    async def load(self, presenter: YClient, demo_id: str, *watchers: YClient) -> None:
        await presenter.send_room({"type": "demo", "action": "load", "demo": demo_id})
        for client in (presenter, *watchers):
            await eventually(
                lambda c=client: any(
                    m["type"] == "demo.state" and m["demo"] == demo_id for m in c.room_messages
                ),
                what=f"{demo_id} loaded",
            )

    async def query(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    async def events(self, kind: str, who: dict[str, Any] | None = None) -> list[asyncpg.Record]:
        if who is None:
            return await self.query(
                "SELECT * FROM progress_events WHERE type = $1 ORDER BY id", kind
            )
        return await self.query(
            "SELECT * FROM progress_events WHERE type = $1 AND user_id = $2 ORDER BY id",
            kind,
            uid(who),
        )

    async def metric(self, name: str) -> float:
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"{self.server.http}/metrics") as r,
        ):
            text = await r.text()
        match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        return float(match[1]) if match else 0.0

    async def settled(self) -> None:
        """Every progress event submitted so far has been applied (or given up)."""

        async def idle() -> bool:
            return await self.metric("opencode_live_progress_events_pending") == 0.0

        await until(idle, what="the progress feed to be idle")

    async def close(self) -> None:
        for client, session in self.open:
            await client.close()
            await session.close()


@pytest.fixture
async def make_lab(server_factory, database_url, tokens):
    """``await make_lab(*flags)``: a server with those flags and the room set up."""
    made: list[Lab] = []

    async def make(*flags: str) -> Lab:
        server = server_factory(*flags, env={"OPENCODE_LIVE_PAIRING_MINUTE_SECONDS": str(MINUTE)})
        lab = Lab(server, database_url, tokens)
        made.append(lab)
        await lab.setup()
        return lab

    yield make
    for lab in made:
        await lab.close()


@pytest.fixture
async def lab(make_lab):
    return await make_lab()


def of_type(client: YClient, kind: str) -> list[dict[str, Any]]:
    return [m for m in client.room_messages if m["type"] == kind]


def notices(client: YClient) -> list[dict[str, Any]]:
    return of_type(client, "notice")


async def refused(client: YClient, body: dict[str, Any], code: str) -> str:
    """Send ``body``; the next notice the client gets must have ``code``. Its text."""
    before = len(notices(client))
    await client.send_room(body)
    await eventually(lambda: len(notices(client)) > before, what=f"{code} notice")
    notice = notices(client)[before]
    assert (notice["level"], notice["code"]) == ("error", code), notice
    return notice["text"]


async def item_seen(client: YClient, **fields: Any) -> dict[str, Any]:
    def match() -> list[dict[str, Any]]:
        return [
            m for m in of_type(client, "question") if all(m.get(k) == v for k, v in fields.items())
        ]

    await eventually(lambda: bool(match()), what=f"question {fields}")
    return match()[-1]


# -- runs ------------------------------------------------------------------------------


@pytest.mark.usefixtures("docker_engine")
async def test_a_run_is_one_run_finished_event_for_its_requester(make_lab) -> None:
    lab = await make_lab(*RUN_FLAGS)
    sam = await lab.join(SAM)
    ines = await lab.join(INES)
    sam.edit(lambda f: f.__setitem__("main.py", Text("import sys\nsys.exit(3)\n")))
    await eventually(lambda: ines.text("main.py") is not None, what="the file at Ines")
    await sam.send_room({"type": "run"})
    await eventually(lambda: bool(of_type(sam, "run.exit")), timeout=30, what="run.exit")
    exit_ = of_type(sam, "run.exit")[-1]
    assert exit_["exit_code"] == 3

    rows = await until(lambda: lab.events("run.finished", SAM), what="run.finished")
    await lab.settled()
    rows = await lab.events("run.finished")
    assert len(rows) == 1
    assert rows[0]["idempotency_key"] == f"run:{exit_['run']}"
    assert rows[0]["user_id"] == uid(SAM)
    payload = json.loads(rows[0]["payload"])
    assert (payload["language"], payload["exit_code"], payload["room_id"]) == ("python", 3, "lab")

    # a refused run (one is going: run-busy; a viewer: permission-denied) is not a run
    viewer = await lab.join({"user_id": "vic", "name": "Vic"})
    await refused(viewer, {"type": "run"}, "permission-denied")
    sam.edit(lambda f: f.__setitem__("main.py", Text("import time\ntime.sleep(3)\n")))
    await sam.send_room({"type": "run"})
    await eventually(lambda: len(of_type(sam, "run.started")) == 2, timeout=30, what="run 2")
    await refused(ines, {"type": "run"}, "run-busy")
    await eventually(lambda: len(of_type(sam, "run.exit")) == 2, timeout=30, what="run 2 exit")
    await until(lambda: _count(lab, "run.finished", 2), what="the second run's run.finished")
    await lab.settled()
    rows = await lab.events("run.finished")
    assert [r["user_id"] for r in rows] == [uid(SAM), uid(SAM)]


async def _count(lab: Lab, kind: str, n: int) -> bool:
    return len(await lab.events(kind)) == n


# -- questions and answers -------------------------------------------------------------


async def test_questions_asked_and_answers_accepted_become_events(lab: Lab) -> None:
    ines = await lab.join(INES)
    sam = await lab.join(SAM)
    bea = await lab.join(BEA)
    olive = await lab.join(OLIVE)
    await lab.load(ines, "loops", sam, bea, olive)

    await sam.send_room({"type": "question.ask", "text": "Why a list?"})
    q = await item_seen(bea, text="Why a list?")
    assert q["answers"] == [] and q["user"] == str(uid(SAM))
    asked = await until(lambda: lab.events("question.asked", SAM), what="question.asked")
    assert [r["idempotency_key"] for r in asked] == [f"question:{q['id']}:asked"]

    # nobody answers their own question
    text = await refused(
        sam, {"type": "question.answer", "id": q["id"], "text": "Me!"}, "bad-question"
    )
    assert "your own question" in text
    # malformed answers get a clear error, and the room lives on
    cases = [
        ({"type": "question.answer", "id": q["id"]}, "bad-room-message", "text"),
        ({"type": "question.answer", "id": "x", "text": "a"}, "bad-room-message", "id"),
        ({"type": "question.answer", "id": q["id"], "text": 5}, "bad-room-message", "text"),
        ({"type": "question.answer", "id": q["id"], "text": "  "}, "bad-question", "some text"),
        ({"type": "question.answer", "id": q["id"], "text": "x" * 2001}, "bad-question", "2000"),
        ({"type": "question.answer", "id": q["id"], "text": "a\x00"}, "bad-question", "NUL"),
        ({"type": "question.answer", "id": 999999, "text": "a"}, "bad-question", "no question"),
        ({"type": "question.answer", "id": -4, "text": "a"}, "bad-question", "no question"),
        ({"type": "question.accept", "id": q["id"]}, "bad-room-message", "answer"),
        ({"type": "question.accept", "id": q["id"], "answer": 0}, "bad-question", "no answer"),
    ]
    for body, code, words in cases:
        text = await refused(bea, body, code)
        assert words in text, (body, text)
    assert not bea.closed.is_set()

    await bea.send_room({"type": "question.answer", "id": q["id"], "text": " It keeps order. "})
    with_bea = await item_seen(sam, id=q["id"])
    await eventually(lambda: bool(of_type(sam, "question")[-1]["answers"]), what="Bea's answer")
    with_bea = of_type(sam, "question")[-1]
    [answer_b] = with_bea["answers"]
    assert (answer_b["text"], answer_b["by"], answer_b["user"], answer_b["accepted"]) == (
        "It keeps order.",
        "Bea",
        str(uid(BEA)),
        False,
    )
    await olive.send_room({"type": "question.answer", "id": q["id"], "text": "Lists are fast"})
    await eventually(
        lambda: len(of_type(ines, "question")[-1]["answers"]) == 2, what="Olive's answer"
    )
    answer_o = of_type(ines, "question")[-1]["answers"][1]

    # only the asker or staff accepts
    text = await refused(
        olive,
        {"type": "question.accept", "id": q["id"], "answer": answer_o["id"]},
        "permission-denied",
    )
    assert "person who asked" in text

    await sam.send_room({"type": "question.accept", "id": q["id"], "answer": answer_b["id"]})
    for client in (ines, bea, olive):
        await eventually(
            lambda c=client: (
                of_type(c, "question")[-1]["answered"]
                and of_type(c, "question")[-1]["answers"][0]["accepted"]
            ),
            what="the accepted answer",
        )
    answered = await until(lambda: lab.events("question.answered", BEA), what="question.answered")
    assert [r["idempotency_key"] for r in answered] == [f"question:{q['id']}:answered"]
    points = await lab.query(
        "SELECT points FROM user_points WHERE event_id = $1 AND type = 'answer'",
        answered[0]["id"],
    )
    assert len(points) == 1 and points[0]["points"] > 0

    # accepting again, or another answer (by the asker or staff), changes nothing
    seen = len(of_type(sam, "question"))
    await sam.send_room({"type": "question.accept", "id": q["id"], "answer": answer_b["id"]})
    await eventually(lambda: len(of_type(sam, "question")) > seen, what="unchanged accept")
    for who in (sam, ines):
        text = await refused(
            who,
            {"type": "question.accept", "id": q["id"], "answer": answer_o["id"]},
            "bad-question",
        )
        assert "accepted answer already" in text

    # a joiner gets the question with its answers in the list
    late = await lab.join({"user_id": "lea", "name": "Lea"})
    await eventually(lambda: bool(of_type(late, "questions")), what="the joiner's list")
    [listed] = of_type(late, "questions")[-1]["items"]
    assert [(a["by"], a["accepted"]) for a in listed["answers"]] == [
        ("Bea", True),
        ("Olive", False),
    ]

    # Ines asks; Bea answers; Ines accepts: one more question.answered, for Bea
    await ines.send_room({"type": "question.ask", "text": "Other loops?"})
    q2 = await item_seen(bea, text="Other loops?")
    await bea.send_room({"type": "question.answer", "id": q2["id"], "text": "while"})
    await eventually(
        lambda: any(m["id"] == q2["id"] and m["answers"] for m in of_type(ines, "question")),
        what="the answer to q2",
    )
    a2 = next(m for m in of_type(ines, "question") if m["id"] == q2["id"] and m["answers"])
    await ines.send_room(
        {"type": "question.accept", "id": q2["id"], "answer": a2["answers"][0]["id"]}
    )
    await until(lambda: _count(lab, "question.answered", 2), what="q2 answered")
    await lab.settled()
    answered = await lab.events("question.answered")
    assert [(r["user_id"], r["idempotency_key"]) for r in answered] == [
        (uid(BEA), f"question:{q['id']}:answered"),
        (uid(BEA), f"question:{q2['id']}:answered"),
    ]
    assert [r["user_id"] for r in await lab.events("question.asked")] == [uid(SAM), uid(INES)]
    stored = await lab.query("SELECT count(*) AS n FROM question_answers")
    assert stored[0]["n"] == 3
    assert not of_type(sam, "progress.award")

    # a third accepted answer earns Bea the shipped "Helper" achievement: the room is told
    await olive.send_room({"type": "question.ask", "text": "Why while?"})
    q3 = await item_seen(bea, text="Why while?")
    await bea.send_room({"type": "question.answer", "id": q3["id"], "text": "No count known"})
    await eventually(
        lambda: any(m["id"] == q3["id"] and m["answers"] for m in of_type(olive, "question")),
        what="the answer to q3",
    )
    a3 = next(m for m in of_type(olive, "question") if m["id"] == q3["id"] and m["answers"])
    await olive.send_room(
        {"type": "question.accept", "id": q3["id"], "answer": a3["answers"][0]["id"]}
    )
    for client in (sam, bea, ines):
        await eventually(lambda c=client: bool(of_type(c, "progress.award")), what="the award")
        [award] = of_type(client, "progress.award")
        assert (award["user"], award["name"], award["kind"], award["title"]) == (
            str(uid(BEA)),
            "Bea",
            "achievement",
            "Helper",
        )
        assert award["xp"] > 0


# -- pairing ---------------------------------------------------------------------------


async def test_two_active_students_pair_and_idlers_and_staff_do_not(lab: Lab) -> None:
    sam = await lab.join(SAM)
    bea = await lab.join(BEA)
    olive = await lab.join(OLIVE)  # there, but never edits
    ines = await lab.join(INES)  # edits, but staff do not pair
    started = time.monotonic()
    i = 0
    while time.monotonic() - started < 4 * MINUTE:  # both work for four "minutes"
        for client, name in ((sam, "s.py"), (bea, "b.py"), (ines, "i.py")):
            client.edit(lambda f, n=name, k=i: f.__setitem__(n, Text(str(k))))
        i += 1
        await eventually(lambda k=i: olive.text("b.py") == str(k - 1), what="edits arrive")
        await asyncio.sleep(MINUTE / 5)  # the pace at which the two type
    await lab.leave(bea)

    rows = await until(lambda: _both_paired(lab), what="pairing.minutes for Sam and Bea")
    await lab.settled()
    rows = await lab.events("pairing.minutes")
    by_user: dict[uuid.UUID, int] = {}
    for row in rows:
        payload = json.loads(row["payload"])
        partner = uuid.UUID(payload["partner_id"])
        assert {row["user_id"], partner} == {uid(SAM), uid(BEA)}, payload
        assert row["idempotency_key"].startswith(f"pair:lab:{row['user_id']}:{partner}:")
        by_user[row["user_id"]] = by_user.get(row["user_id"], 0) + payload["minutes"]
    assert by_user[uid(SAM)] == by_user[uid(BEA)] >= 2
    # four minutes of work at most: never more than was observed
    assert by_user[uid(SAM)] <= 4 + 1
    partners = await lab.query("SELECT user_id, partner_id, minutes FROM user_partners")
    assert sorted((r["user_id"], r["partner_id"], r["minutes"]) for r in partners) == sorted(
        [(uid(SAM), uid(BEA), by_user[uid(SAM)]), (uid(BEA), uid(SAM), by_user[uid(BEA)])]
    )
    xp = await lab.query(
        "SELECT user_id, sum(points) AS xp FROM user_points WHERE type = 'pairing' GROUP BY 1"
    )
    assert {r["user_id"] for r in xp} == {uid(SAM), uid(BEA)}


async def _both_paired(lab: Lab) -> bool:
    users = {r["user_id"] for r in await lab.events("pairing.minutes")}
    return users == {uid(SAM), uid(BEA)}


# -- demos -----------------------------------------------------------------------------


async def test_a_demo_played_live_is_watched_by_the_viewers_connected(lab: Lab) -> None:
    ines = await lab.join(INES)
    sam = await lab.join(SAM)
    await lab.load(ines, "hello", sam)
    await ines.send_room({"type": "demo", "action": "play"})
    # the 2-second recording plays to its end while Sam is in the room
    keys = [f"demo:hello:{uid(SAM)}:live:0.5", f"demo:hello:{uid(SAM)}:live:0.9"]

    async def both() -> bool:
        return sorted(r["idempotency_key"] for r in await lab.events("demo.watched", SAM)) == keys

    await until(both, what="Sam's milestones")
    rows = sorted(await lab.events("demo.watched", SAM), key=lambda r: r["idempotency_key"])
    fractions = [json.loads(r["payload"])["fraction"] for r in rows]
    assert 0.5 <= fractions[0] and 0.9 <= fractions[1] <= 1.0
    demo_xp = await lab.query(
        "SELECT count(*) AS n FROM user_points WHERE type = 'demo' AND user_id = $1", uid(SAM)
    )
    assert demo_xp[0]["n"] == 1  # the ledger gives XP at 0.9 only

    # Bea comes in after the end: nothing played while she was there
    bea = await lab.join(BEA)
    await eventually(lambda: bool(of_type(bea, "demo.state")), what="Bea's demo.state")
    await lab.settled()
    assert await lab.events("demo.watched", BEA) == []
    assert await lab.events("demo.watched", INES) == []  # the presenter is not a viewer


async def test_self_paced_progress_is_capped_by_the_time_the_server_saw(lab: Lab) -> None:
    async def put(fraction: float) -> None:
        async with (
            aiohttp.ClientSession(headers=lab.tokens.auth(**SAM)) as s,
            s.put(
                f"{lab.server.http}/api/demos/hello/progress",
                json={"position": 2.0 * fraction, "fraction": fraction, "completed": True},
            ) as r,
        ):
            assert r.status == 200, await r.text()

    first = time.monotonic()
    await put(1.0)
    await put(1.0)  # claiming the whole demo at once
    await lab.settled()
    assert await lab.events("demo.watched", SAM) == []

    # the same claim counts once the time to play it at twice the speed has passed
    async def credited() -> bool:
        await put(1.0)
        return len(await lab.events("demo.watched", SAM)) == 2

    await until(credited, what="the capped milestones")
    assert time.monotonic() - first >= 0.8  # 0.9 of 2 s at 2x is 0.9 s (clocks differ a little)
    keys = sorted(r["idempotency_key"] for r in await lab.events("demo.watched", SAM))
    assert keys == [f"demo:hello:{uid(SAM)}:self:0.5", f"demo:hello:{uid(SAM)}:self:0.9"]


# -- outages ---------------------------------------------------------------------------


async def test_an_event_applied_during_a_database_outage_lands_once(
    server_factory, tokens, tmp_path
) -> None:
    """On a Postgres this test starts and stops itself, never the machine's."""
    from store import EmbeddedPostgres

    embedded = EmbeddedPostgres(tmp_path / "pg")
    dsn = await embedded.start()
    made: Lab | None = None
    try:
        server = server_factory(env={"DATABASE_URL": dsn})
        made = Lab(server, dsn, tokens)
        await made.setup()
        ines = await made.join(INES)
        sam = await made.join(SAM)
        await made.load(ines, "hello", sam)

        await embedded.stop()
        await ines.send_room({"type": "demo", "action": "play"})
        await eventually(
            lambda: any(m.get("playing") for m in of_type(sam, "demo.state")), what="playing"
        )
        # the milestones are reached while the database is away: applying them fails
        await until(
            lambda: _retried(made),
            what="a retry",
        )
        assert await embedded.start() == dsn

        keys = [f"demo:hello:{uid(SAM)}:live:0.5", f"demo:hello:{uid(SAM)}:live:0.9"]

        async def landed() -> bool:
            try:
                rows = await made.events("demo.watched", SAM)
            except (OSError, asyncpg.PostgresError):
                return False
            return sorted(r["idempotency_key"] for r in rows) == keys

        await until(landed, timeout=60, what="the events after the outage")
        await made.settled()
        rows = await made.events("demo.watched")
        assert sorted(r["idempotency_key"] for r in rows) == keys
        xp = await made.query("SELECT count(*) AS n FROM user_points WHERE type = 'demo'")
        assert xp[0]["n"] == 1
        assert not sam.closed.is_set() and not ines.closed.is_set()
    finally:
        if made is not None:
            await made.close()
        await embedded.stop()


async def _retried(lab: Lab) -> bool:
    return await lab.metric("opencode_live_progress_event_retries_total") > 0


# -- question lists shared by joiners ----------------------------------------------------


async def test_a_burst_of_joiners_shares_one_question_list(lab: Lab) -> None:
    ines = await lab.join(INES)
    await lab.load(ines, "loops")
    await ines.send_room({"type": "question.ask", "text": "Shared?"})
    await item_seen(ines, text="Shared?")
    reads = await lab.metric("opencode_live_question_list_reads_total")
    assert reads == 1  # the list sent on the load

    joiners = await asyncio.gather(
        *(lab.join({"user_id": f"j{i}", "name": f"J{i}"}) for i in range(60))
    )
    for client in joiners:
        await eventually(lambda c=client: bool(of_type(c, "questions")), what="a joiner's list")
        [item] = of_type(client, "questions")[-1]["items"]
        assert item["text"] == "Shared?"
    # the question asked after the load changed the list: read once more, for everyone
    assert await lab.metric("opencode_live_question_list_reads_total") == reads + 1

    # a vote changes it again: the next joiner reads it once, with the vote in it
    await joiners[0].send_room({"type": "question.vote", "id": item["id"]})
    await item_seen(ines, id=item["id"], votes=1)
    late = await lab.join({"user_id": "late", "name": "Late"})
    await eventually(lambda: bool(of_type(late, "questions")), what="the late joiner's list")
    assert of_type(late, "questions")[-1]["items"][0]["votes"] == 1
    assert await lab.metric("opencode_live_question_list_reads_total") == reads + 2
    # each person's own votes come with the shared list
    again = await lab.join({"user_id": "j0", "name": "J0"})
    await eventually(lambda: bool(of_type(again, "questions")), what="j0's list again")
    assert of_type(again, "questions")[-1]["voted"] == [item["id"]]
    assert of_type(late, "questions")[-1]["voted"] == []
    assert await lab.metric("opencode_live_question_list_reads_total") == reads + 2


async def test_pairs_still_together_at_shutdown_are_credited_before_it_ends(lab: Lab) -> None:
    sam = await lab.join(SAM)
    bea = await lab.join(BEA)
    started = time.monotonic()
    i = 0
    while time.monotonic() - started < 2 * MINUTE:  # well before the 5-minute flush
        for client, name in ((sam, "s.py"), (bea, "b.py")):
            client.edit(lambda f, n=name, k=i: f.__setitem__(n, Text(str(k))))
        i += 1
        await eventually(lambda k=i: sam.text("b.py") == str(k - 1), what="edits arrive")
        await asyncio.sleep(MINUTE / 5)
    assert await lab.events("pairing.minutes") == []
    # SIGTERM: the server credits the pairs still together and drains what it observed
    assert await asyncio.to_thread(lab.server.stop) == 0
    users = {r["user_id"] for r in await lab.events("pairing.minutes")}
    assert users == {uid(SAM), uid(BEA)}
