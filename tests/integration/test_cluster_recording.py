"""Recording a room with several server processes sharing it through Redis.

Real ``opencode-live serve`` processes on the machine's Redis (under the test's
own prefix), real pycrdt clients. What is checked is what the people in the
room see, whichever node they reach: one recording per room (a second start is
refused from any node, over the socket and HTTP), a joiner anywhere told that
the room is being recorded, a marker and a stop from a presenter on another
node reaching the recording, the saved demo holding the edits made on the other
node, and the recording node keeping the room (and its recording) after its own
last connection left while people go on elsewhere. The slot itself is checked
against Redis directly: held by one recording, renewed with the record as it
grows, freed when its node stops renewing it (a killed node).

Without Redis, these tests skip outside CI and fail in CI.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from pycrdt import Text

from demos import parse_demo, recording_files_at
from demos.format import Marker
from rooms.extension import RecordState
from server.recordings import RecordingService, RecordRefused
from server.recordslots import RecordSlot, RecordSlots
from server.sharedredis import SharedRedis, state_prefix
from tests.cluster import free_port, metric, py_clients, start_nodes
from tests.conftest import REDIS_URL, Tokens
from tests.pyclient import YClient
from tests.pyclient import eventually as soon
from tests.unit.test_recorder import FakeRoom, FlakyLibrary, _staff

OWNER = {"user_id": "olive", "name": "Olive"}  # a student who owns the room
TEACHER = {"user_id": "ines", "name": "Ines", "role": "instructor"}
OTHER_TEACHER = {"user_id": "tomas", "name": "Tomás", "role": "instructor"}
VIEWER = {"user_id": "sam", "name": "Sam"}
ROOM = "cluster-lesson"


def _of(client: YClient, kind: str) -> list[dict]:
    return [m for m in client.room_messages if m["type"] == kind]


def _notices(client: YClient, code: str) -> list[str]:
    return [m["text"] for m in _of(client, "notice") if m["code"] == code]


def _saved(client: YClient) -> list[str]:
    return [m["demo"] for m in _of(client, "record.state") if m.get("demo")]


def _recording(client: YClient) -> bool | None:
    """What the latest ``record.state`` said (None: none yet)."""
    states = _of(client, "record.state")
    return states[-1]["recording"] if states else None


async def _api(
    http: aiohttp.ClientSession, tokens: Tokens, who: dict, method: str, url: str, **kw: Any
) -> tuple[int, dict]:
    async with http.request(method, url, headers=tokens.auth(**who), **kw) as resp:
        return resp.status, await resp.json(content_type=None)


async def _until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        await asyncio.sleep(0.05)


async def _holds_for(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    """``check`` stays true for ``seconds`` (polled): something that must not happen doesn't."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert await check(), what
        await asyncio.sleep(0.05)


def _type(client: YClient, path: str, text: str) -> None:
    def edit(files: Any) -> None:
        if path not in files:
            files[path] = Text()
        current = files[path]
        current.insert(len(current), text)

    client.edit(edit)


async def test_a_recording_on_one_node_is_the_room_s_recording_on_every_node(
    server_factory,
    redis_prefix,
    tokens,
    session,
):
    nodes = start_nodes(server_factory, REDIS_URL, redis_prefix, 2)
    n0, n1 = nodes
    status, body = await _api(
        session,
        tokens,
        OWNER,
        "POST",
        f"{n0.http}/api/rooms",
        json={"id": ROOM, "visibility": "public"},
    )
    assert status == 201, body
    path = f"/api/rooms/{ROOM}/recording"

    def url(node: Any, who: dict) -> str:
        return f"{node.ws}/rooms/{ROOM}?ext=1&token={tokens.token(**who)}"

    async with py_clients() as open_py:
        presenter = await open_py(url(n0, TEACHER))
        _type(presenter, "main.py", "print('before')\n")
        await presenter.send_room(
            {"type": "record", "action": "start", "demo": "cluster-rec", "title": "Across nodes"}
        )
        await soon(lambda: _recording(presenter) is True, what="recording on node 0")

        # Joiners on node 1 are told the room is being recorded, and by whom.
        other = await open_py(url(n1, OTHER_TEACHER))
        student = await open_py(url(n1, OWNER))  # a student who may edit (not record)
        for client in (other, student):
            await soon(lambda c=client: _recording(c) is True, what="record.state on node 1")
            assert _of(client, "record.state")[0]["by"] == "Ines"
        status, state = await _api(session, tokens, VIEWER, "GET", f"{n1.http}{path}")
        assert status == 200, state
        assert (state["recording"], state["by"]) == (True, "Ines")
        assert (state["demo"], state["title"]) == ("cluster-rec", "Across nodes")

        # A second start is refused on node 1 as it is on node 0 (socket and HTTP).
        await other.send_room({"type": "record", "action": "start"})
        await soon(lambda: _notices(other, "bad-record-command"), what="the refusal on node 1")
        refusal = _notices(other, "bad-record-command")[0]
        assert "already being recorded (started by Ines)" in refusal
        status, body = await _api(
            session, tokens, OTHER_TEACHER, "POST", f"{n1.http}{path}", json={"action": "start"}
        )
        assert status == 409 and "already being recorded" in body["error"], body
        # Permission is checked where the command arrives.
        await student.send_room({"type": "record", "action": "stop"})
        await soon(lambda: _notices(student, "permission-denied"), what="the student refused")

        # Edits made on node 1 reach the recording on node 0.
        _type(student, "main.py", "print('from node 1')\n")
        await soon(lambda: "from node 1" in (presenter.text("main.py") or ""), what="node 1's edit")

        # Markers from node 1 (socket, then HTTP) are dropped into the recording; all see them.
        await other.send_room({"type": "record", "action": "marker", "label": "Part 2"})
        for client in (presenter, other, student):
            await soon(
                lambda c=client: [m["label"] for m in _of(c, "record.marker")] == ["Part 2"],
                what="the marker everywhere",
            )
        status, marked = await _api(
            session,
            tokens,
            OTHER_TEACHER,
            "POST",
            f"{n1.http}{path}",
            json={"action": "marker", "label": "Part 3"},
        )
        assert status == 200 and marked["label"] == "Part 3" and marked["t"] > 0, marked
        status, body = await _api(
            session,
            tokens,
            OTHER_TEACHER,
            "POST",
            f"{n1.http}{path}",
            json={"action": "marker", "label": "x" * 201},
        )
        assert status == 400, body

        # The presenter leaves node 0, people go on on node 1: node 0 keeps the room
        # (past its unload grace) and records on.
        await presenter.close()
        await _until(
            lambda: _equals(metric(session, n0, "opencode_live_connections"), 0),
            what="node 0 without connections",
        )

        async def still_recording() -> bool:
            rooms = await metric(session, n0, "opencode_live_rooms")
            status, state = await _api(session, tokens, VIEWER, "GET", f"{n1.http}{path}")
            return rooms == 1 and status == 200 and state["recording"] is True

        for k in range(4):
            _type(student, "after.txt", f"{k},")
            await _holds_for(still_recording, 0.5, "node 0 let the room (and recording) go")

        # Stopped from node 1: saved on node 0, and everyone on node 1 hears of it.
        await other.send_room({"type": "record", "action": "stop"})
        for client in (other, student):
            await soon(lambda c=client: _saved(c) == ["cluster-rec"], timeout=20, what="saved")
        assert not _notices(other, "unavailable")

        # The slot is free: node 1 records now (HTTP), and node 0 stops it (HTTP).
        status, body = await _api(
            session,
            tokens,
            OTHER_TEACHER,
            "POST",
            f"{n1.http}{path}",
            json={"action": "start", "demo": "cluster-rec-2"},
        )
        assert status == 201, body
        await soon(lambda: _recording(student) is True, what="the second recording")
        _type(student, "second.txt", "two")
        # In the room (node 1 relayed it) before the stop is asked for elsewhere.
        await soon(lambda: other.text("second.txt") == "two", what="the edit on node 1")
        status, body = await _api(
            session, tokens, TEACHER, "POST", f"{n0.http}{path}", json={"action": "stop"}
        )
        assert status == 200, body
        assert (body["demo"], body["saved"], body["recording"]) == ("cluster-rec-2", True, False)
        status, body = await _api(
            session, tokens, TEACHER, "POST", f"{n0.http}{path}", json={"action": "stop"}
        )
        assert status == 409 and "not being recorded" in body["error"], body

        # Recorded on node 0 (started over HTTP: nobody is connected there), people on
        # node 1: once they all leave, the recording ends and is saved.
        status, body = await _api(
            session,
            tokens,
            TEACHER,
            "POST",
            f"{n0.http}{path}",
            json={"action": "start", "demo": "cluster-rec-3"},
        )
        assert status == 201, body
        _type(student, "third.txt", "three")
        await soon(lambda: other.text("third.txt") == "three", what="the third edit on node 1")
        await other.close()
        await student.close()

        async def saved_third() -> bool:
            status, _ = await _api(
                session, tokens, VIEWER, "GET", f"{n0.http}/api/demos/cluster-rec-3"
            )
            return status == 200

        await _until(saved_third, what="the recording ended with nobody left", timeout=20)

    demo = await _demo(session, tokens, n1, "cluster-rec")
    assert demo.recording is not None
    files = recording_files_at(demo, demo.recording.duration)
    assert files["main.py"] == "print('before')\nprint('from node 1')\n"
    assert files["after.txt"] == "0,1,2,3,"
    labels = [e.label for e in demo.recording.events if isinstance(e, Marker)]
    assert labels == ["Part 2", "Part 3"]
    second = await _demo(session, tokens, n0, "cluster-rec-2")
    assert second.recording is not None
    assert recording_files_at(second, second.recording.duration)["second.txt"] == "two"
    third = await _demo(session, tokens, n0, "cluster-rec-3")
    assert third.recording is not None
    assert recording_files_at(third, third.recording.duration)["third.txt"] == "three"
    # Decided in Redis, not by each node alone.
    for node in nodes:
        assert await metric(session, node, "opencode_live_shared_state_fallbacks_total") == 0


async def _equals(value: Awaitable[float], want: float) -> bool:
    return await value == want


async def _demo(http: aiohttp.ClientSession, tokens: Tokens, node: Any, demo_id: str) -> Any:
    async with http.get(f"{node.http}/api/demos/{demo_id}", headers=tokens.auth(**VIEWER)) as resp:
        assert resp.status == 200, await resp.text()
        demo, problems = parse_demo(await resp.read())
    assert demo is not None and not problems, problems
    return demo


@pytest.fixture
async def shared(redis_prefix: str) -> AsyncIterator[SharedRedis]:
    client = SharedRedis(REDIS_URL, prefix=state_prefix(redis_prefix))
    try:
        yield client
    finally:
        await client.close()


async def test_a_recording_slot_is_held_by_one_recording_and_frees_itself(
    shared: SharedRedis,
):
    node_a, node_b = RecordSlots(shared, ttl=0.6), RecordSlots(shared, ttl=0.6)
    events = [0]

    def record_a() -> RecordSlot:
        state = RecordState(recording=True, by="Ines", started=1.0, events=events[0])
        return RecordSlot(node_a.node, "rec-a", "demo-a", "Title A", state)

    def record_b() -> RecordSlot:
        return RecordSlot(node_b.node, "rec-b", "demo-b", "B", RecordState(True, by="Tomás"))

    try:
        assert await node_a.take("lab", "rec-a", record_a) is None
        holder = await node_b.take("lab", "rec-b", record_b)
        assert holder == record_a()  # refused, with who holds it
        # Renewed while held, with the record as it is then; taken all along.
        events[0] = 7
        deadline = time.monotonic() + 5
        while (current := await node_b.read("lab")) is None or current.state.events != 7:
            assert time.monotonic() < deadline, "the slot's record was not renewed"
            assert current is not None
            await asyncio.sleep(0.05)
        assert await node_b.take("lab", "rec-b", record_b) is not None
        await node_a.release("lab", "rec-wrong")  # only its own recording releases a slot
        assert await node_b.read("lab") is not None
        await node_a.release("lab", "rec-a")
        assert await node_b.read("lab") is None
        assert await node_b.take("lab", "rec-b", record_b) is None
        # Node B dies (stops renewing, never releases): the slot frees itself.
        await node_b.close()
        deadline = time.monotonic() + 5
        while await node_a.take("lab", "rec-c", record_a) is not None:
            assert time.monotonic() < deadline, "the slot of a dead node never expired"
            await asyncio.sleep(0.05)
        await node_a.release("lab", "rec-c")
    finally:
        await node_a.close()
        await node_b.close()


async def test_without_an_answer_from_redis_a_node_records_on_its_own_rule():
    """Redis away: recording goes on per node (never refused for it), capped in time."""
    away = SharedRedis(f"redis://127.0.0.1:{free_port()}/0", prefix="ocl-test-away:")
    library = FlakyLibrary(failures=0)
    service = RecordingService(library, slots=RecordSlots(away), max_seconds=0.2)
    room = FakeRoom("alone")
    conn = _staff()
    try:
        # Never waits long on Redis (bounded: a hang fails here).
        session = await asyncio.wait_for(
            service.begin(room, conn.person, None, demo="alone-1"),  # type: ignore[arg-type]
            5,
        )
        assert room.kept == 1  # the room stays loaded while it records
        with pytest.raises(RecordRefused, match="already being recorded"):
            await service.begin(room, conn.person, None)  # type: ignore[arg-type]
        state, elsewhere = await service.shared_state("alone")
        assert state.recording and elsewhere is None
        # The time cap stops and saves it.
        deadline = time.monotonic() + 5
        while "alone" in service.active or service._tasks:
            assert time.monotonic() < deadline, "the time cap did not stop the recording"
            await asyncio.sleep(0.02)
        assert list(library.saved) == [session.demo_id] and not room.taps
        assert room.kept == 0  # and may unload once saved
        with pytest.raises(RecordRefused, match="not being recorded"):
            await service.command(room, "stop", None, None)  # type: ignore[arg-type]
    finally:
        await service.close()
        await away.close()
