"""Recording rooms at the real server: real pycrdt clients edit, the demo replays exactly."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest
from pycrdt import Assoc, StickyIndex, Text

from demos import parse_demo, recording_files_at, recording_output_at
from demos.format import Cursor, Marker, Output, Update
from tests.pyclient import YClient, eventually

OWNER = {"user_id": "olive", "name": "Olive", "cohort": "2026-a"}  # a student who owns the room
TEACHER = {"user_id": "ines", "name": "Ines", "role": "instructor"}
VIEWER = {"user_id": "bea", "name": "Bea", "cohort": "2026-b"}

RUN_FLAGS = ("--run-pool-warm", "1", "--run-wall-seconds", "5", "--run-memory-mb", "256")


async def _create(server, tokens, room: str) -> None:
    async with (
        aiohttp.ClientSession(headers=tokens.auth(**OWNER)) as s,
        s.post(f"{server.http}/api/rooms", json={"id": room, "visibility": "public"}) as resp,
    ):
        assert resp.status == 201, await resp.text()


async def _join(server, tokens, room: str, who: dict, **kw) -> YClient:
    session = aiohttp.ClientSession()
    client = YClient(session, f"{server.ws}/rooms/{room}?ext=1&token={tokens.token(**who)}", **kw)
    await client.connect()
    await client.wait_synced()
    return client


async def _leave(*clients: YClient) -> None:
    for client in clients:
        await client.close()
        await client.session.close()


def _relpos(text: Text, index: int) -> dict:
    """A position as y-codemirror puts it in awareness (``index`` in code points here)."""
    content = str(text)
    type_id = StickyIndex.new(text, 0, Assoc.BEFORE).to_json()["type"]
    if index >= len(content):
        item = None
    else:
        units = len(content[:index].encode("utf-16-le")) // 2
        item = StickyIndex.new(text, units, Assoc.AFTER).to_json()["item"]
    return {"type": type_id, "tname": None, "item": item, "assoc": 0}


def _of(client: YClient, kind: str) -> list[dict]:
    return [m for m in client.room_messages if m["type"] == kind]


def _notices(client: YClient, code: str) -> list[dict]:
    return [m for m in _of(client, "notice") if m["code"] == code]


async def _api(server, tokens, who: dict, method: str, path: str, **kw) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession(headers=tokens.auth(**who)) as s,
        s.request(method, f"{server.http}{path}", **kw) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


async def _saved(client: YClient, timeout: float = 20) -> dict:
    """The ``record.state`` that names the saved recording."""
    await eventually(
        lambda: any(m.get("demo") for m in _of(client, "record.state")),
        timeout=timeout,
        what="the saved recording's record.state",
    )
    return next(m for m in _of(client, "record.state") if m.get("demo"))


async def _demo(server, tokens, demo_id: str):
    async with (
        aiohttp.ClientSession(headers=tokens.auth(**VIEWER)) as s,
        s.get(f"{server.http}/api/demos/{demo_id}") as resp,
    ):
        assert resp.status == 200, await resp.text()
        demo, problems = parse_demo(await resp.read())
    assert demo is not None and not problems, problems
    assert demo.recording is not None
    return demo


async def test_recording_replays_the_final_workspace_byte_for_byte(server, tokens):
    await _create(server, tokens, "lesson")
    teacher = await _join(server, tokens, "lesson", TEACHER)
    student = await _join(server, tokens, "lesson", OWNER)
    watcher = await _join(server, tokens, "lesson", VIEWER)
    try:
        # a workspace that exists before the recording starts
        teacher.edit(lambda f: f.__setitem__("main.py", Text("print('start')\n")))
        teacher.edit(lambda f: f.__setitem__("old.txt", Text("to be removed\n")))
        await eventually(lambda: student.text("old.txt") is not None, what="first files")
        before = student.file_contents()

        await teacher.send_room(
            {"type": "record", "action": "start", "demo": "lesson-1", "title": "Lesson 1"}
        )
        for client in (teacher, student, watcher):
            await eventually(
                lambda c=client: any(m["recording"] for m in _of(c, "record.state")),
                what="record.state recording",
            )
        started = _of(watcher, "record.state")[0]
        assert started["by"] == "Ines" and started["started"] > 0

        await teacher.send_room({"type": "record", "action": "marker", "label": "Loops"})
        for step in range(12):
            # both type at once, neither waiting for the other: concurrent edits
            teacher.edit(
                lambda f, i=step: f["main.py"].insert(len(str(f["main.py"])), f"print({i})\n")
            )
            student.edit(lambda f, i=step: f["main.py"].insert(0, f"# {i} é😀\n"))
            if step % 3 == 0:
                student.edit(lambda f, i=step: f.__setitem__(f"lib/m{i}.py", Text(f"X = {i}\n")))
            if step % 4 == 1:
                teacher.edit(lambda f: f["main.py"].__delitem__(slice(0, 4)))
            if step == 6:
                student.edit(lambda f: f.pop("old.txt"))
                teacher.edit(lambda f: f["lib/m3.py"].insert(0, "import os\n"))
            await asyncio.sleep(0.02)
        # an edit through the HTTP API is recorded too
        status, _ = await _api(
            server, tokens, TEACHER, "PUT", "/api/rooms/lesson/files/notes.md", data="ünïcode\n"
        )
        assert status == 201
        status, marked = await _api(
            server,
            tokens,
            TEACHER,
            "POST",
            "/api/rooms/lesson/recording",
            json={"action": "marker", "label": "End"},
        )
        assert status == 200 and marked["label"] == "End"
        # each client sees the other's edits only once stored: then the recording has them
        await eventually(
            lambda: (
                teacher.file_contents() == student.file_contents()
                and "notes.md" in student.file_contents()
                and "old.txt" not in teacher.file_contents()
            ),
            what="the clients to converge",
        )
        final = teacher.file_contents()
        status, room_files = await _api(server, tokens, OWNER, "GET", "/api/rooms/lesson/files")
        assert status == 200 and room_files["files"] == final

        # a y-codemirror cursor: Yjs relative positions, UTF-16 offsets, past an emoji
        text = final["main.py"]
        anchor_at = len(text) - 3
        await teacher.set_awareness(
            {
                "user": {"name": "Ines"},
                "cursor": {
                    "anchor": _relpos(teacher.files["main.py"], anchor_at),
                    "head": _relpos(teacher.files["main.py"], len(text)),
                },
            }
        )
        await eventually(lambda: teacher.client_id in watcher.awareness, what="the cursor")

        await teacher.send_room({"type": "record", "action": "stop"})
        saved = await _saved(watcher)
        assert saved["demo"] == "lesson-1" and saved["recording"] is False
        markers = [(m["label"], m["t"]) for m in _of(watcher, "record.marker")]
        assert [label for label, _ in markers] == ["Loops", "End"]
    finally:
        await _leave(teacher, student, watcher)

    demo = await _demo(server, tokens, "lesson-1")
    assert demo.title == "Lesson 1"
    assert demo.files == before
    events = demo.recording.events
    assert sum(isinstance(e, Update) for e in events) >= 12
    assert [e.label for e in events if isinstance(e, Marker)] == ["Loops", "End"]
    duration = demo.recording.duration
    assert duration is not None and duration > 0
    replayed = recording_files_at(demo, duration)
    assert replayed == final
    assert {k: v.encode() for k, v in replayed.items()} == {k: v.encode() for k, v in final.items()}
    assert recording_files_at(demo, 0) == before
    cursors = [(e.user, e.file, e.anchor, e.head) for e in events if isinstance(e, Cursor)]
    assert cursors == [("Ines", "main.py", anchor_at, len(text))]
    # the library lists it as a recording
    status, listed = await _api(server, tokens, VIEWER, "GET", "/api/demos?kind=recording")
    assert status == 200
    assert [(d["id"], d["kind"]) for d in listed["demos"]] == [("lesson-1", "recording")]
    status, _ = await _api(server, tokens, VIEWER, "GET", "/api/demos?kind=nope")
    assert status == 400


async def test_only_staff_who_can_edit_record_and_commands_are_checked(server, tokens):
    await _create(server, tokens, "lab")
    owner = await _join(server, tokens, "lab", OWNER)
    watcher = await _join(server, tokens, "lab", VIEWER)
    teacher = await _join(server, tokens, "lab", TEACHER)
    try:
        for client in (owner, watcher):
            await client.send_room({"type": "record", "action": "start"})
            await eventually(lambda c=client: _notices(c, "permission-denied"), what="refusal")
            assert (
                "instructor or teaching assistant"
                in _notices(client, "permission-denied")[0]["text"]
            )
        assert not any(_of(c, "record.state") for c in (owner, watcher, teacher))
        path = "/api/rooms/lab/recording"
        for who in (OWNER, VIEWER):
            status, body = await _api(server, tokens, who, "POST", path, json={"action": "start"})
            assert status == 403 and "permission denied" in body["error"], body
        status, body = await _api(server, tokens, VIEWER, "GET", path)
        assert status == 200 and body["recording"] is False
        status, body = await _api(server, tokens, TEACHER, "POST", path, json={"action": "go"})
        assert status == 400 and "action" in body["error"]
        status, body = await _api(server, tokens, TEACHER, "POST", path, data="not json")
        assert status == 400
        status, body = await _api(
            server, tokens, TEACHER, "POST", path, json={"action": "start", "demo": "../x"}
        )
        assert status == 400 and "demo" in body["error"]

        # stop while not recording, then start twice
        await teacher.send_room({"type": "record", "action": "stop"})
        await eventually(lambda: _notices(teacher, "bad-record-command"), what="stop refused")
        assert "not being recorded" in _notices(teacher, "bad-record-command")[0]["text"]
        await teacher.send_room({"type": "record", "action": "start"})
        await eventually(lambda: _of(owner, "record.state"), what="recording")
        await teacher.send_room({"type": "record", "action": "start"})
        await eventually(
            lambda: len(_notices(teacher, "bad-record-command")) == 2, what="second start refused"
        )
        assert "already being recorded" in _notices(teacher, "bad-record-command")[1]["text"]
        status, body = await _api(server, tokens, TEACHER, "POST", path, json={"action": "start"})
        assert status == 409 and "already" in body["error"]
        # a late joiner is told the room is being recorded
        late = await _join(server, tokens, "lab", {"user_id": "sam", "name": "Sam"})
        await eventually(lambda: _of(late, "record.state"), what="late joiner's record.state")
        assert _of(late, "record.state")[0]["recording"] is True
        await _leave(late)
        status, body = await _api(server, tokens, OWNER, "GET", path)
        assert status == 200 and body["recording"] is True and body["by"] == "Ines"
        owner.edit(lambda f: f.__setitem__("a.py", Text("a = 1\n")))
        await eventually(lambda: teacher.text("a.py") == "a = 1\n", what="edit stored")
        # stop over HTTP answers once it is in the library
        status, body = await _api(server, tokens, TEACHER, "POST", path, json={"action": "stop"})
        assert status == 200 and body["saved"] is True, body
        assert re.fullmatch(r"rec-lab-\d{8}-\d{6}", body["demo"]), body["demo"]
        status, body2 = await _api(server, tokens, TEACHER, "POST", path, json={"action": "stop"})
        assert status == 409 and "not being recorded" in body2["error"]
        status, state = await _api(server, tokens, VIEWER, "GET", path)
        assert state["recording"] is False and state["demo"] == body["demo"]
    finally:
        await _leave(owner, watcher, teacher)
    demo = await _demo(server, tokens, body["demo"])
    assert recording_files_at(demo, demo.recording.duration) == {"a.py": "a = 1\n"}


async def test_a_room_that_unloads_stops_and_saves_its_recording(server, tokens):
    await _create(server, tokens, "gone")
    teacher = await _join(server, tokens, "gone", TEACHER)
    try:
        await teacher.send_room({"type": "record", "action": "start", "demo": "gone-rec"})
        await eventually(lambda: _of(teacher, "record.state"), what="recording")
        teacher.edit(lambda f: f.__setitem__("x.py", Text("x = 1\n")))
        for _ in range(100):  # stored (the room's files are what was applied after storing)
            _, files = await _api(server, tokens, TEACHER, "GET", "/api/rooms/gone/files")
            if files["files"] == {"x.py": "x = 1\n"}:
                break
            await asyncio.sleep(0.05)
    finally:
        await _leave(teacher)
    # the test server unloads an empty room after 0.5 s
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        _, listed = await _api(server, tokens, TEACHER, "GET", "/api/demos?kind=recording")
        if any(d["id"] == "gone-rec" for d in listed.get("demos", [])):
            break
        assert asyncio.get_running_loop().time() < deadline, "the recording was not saved"
        await asyncio.sleep(0.2)
    demo = await _demo(server, tokens, "gone-rec")
    assert recording_files_at(demo, demo.recording.duration) == {"x.py": "x = 1\n"}


@pytest.mark.usefixtures("docker_engine")
async def test_run_output_is_in_the_recording(server_factory, tokens):
    server = server_factory(*RUN_FLAGS)
    await _create(server, tokens, "runs")
    teacher = await _join(server, tokens, "runs", TEACHER)
    try:
        teacher.edit(
            lambda f: f.__setitem__(
                "main.py", Text("import sys\nprint('out 1')\nprint('err', file=sys.stderr)\n")
            )
        )
        await teacher.send_room({"type": "record", "action": "start", "demo": "with-run"})
        await eventually(lambda: _of(teacher, "record.state"), what="recording")
        await teacher.send_room({"type": "run"})
        await eventually(lambda: _of(teacher, "run.exit"), timeout=30, what="run.exit")
        end = _of(teacher, "run.exit")[0]
        assert end["status"] == "ok", end
        await teacher.send_room({"type": "record", "action": "stop"})
        await _saved(teacher)
    finally:
        await _leave(teacher)
    demo = await _demo(server, tokens, "with-run")
    outputs = [e for e in demo.recording.events if isinstance(e, Output)]
    assert {e.run for e in outputs} == {end["run"]}
    assert recording_output_at(demo, demo.recording.duration, streams=("stdout",)) == "out 1\n"
    assert recording_output_at(demo, demo.recording.duration, streams=("stderr",)) == "err\n"
    labels = [e.label for e in demo.recording.events if isinstance(e, Marker)]
    assert labels == ["run main.py"]
    first = min(e.t for e in outputs)
    run_marker = next(e for e in demo.recording.events if isinstance(e, Marker))
    assert run_marker.t <= first


async def test_shutdown_saves_a_recording_in_progress(server_factory, tokens):
    first = server_factory()
    await _create(first, tokens, "late")
    teacher = await _join(first, tokens, "late", TEACHER)
    try:
        await teacher.send_room({"type": "record", "action": "start", "demo": "late-rec"})
        await eventually(lambda: _of(teacher, "record.state"), what="recording")
        teacher.edit(lambda f: f.__setitem__("y.py", Text("y = 2\n")))
        for _ in range(100):
            _, files = await _api(first, tokens, TEACHER, "GET", "/api/rooms/late/files")
            if files["files"] == {"y.py": "y = 2\n"}:
                break
            await asyncio.sleep(0.05)
        assert first.stop() == 0
    finally:
        await _leave(teacher)
    second = server_factory()  # the same database
    demo = await _demo(second, tokens, "late-rec")
    assert recording_files_at(demo, demo.recording.duration) == {"y.py": "y = 2\n"}
