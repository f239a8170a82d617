"""A presenter copies the demo's code at the current step into the room.

The files arrive as an ordinary shared change (a real pycrdt client sees them),
the room's other files stay, and the step's highlights arrive as Yjs relative
positions that resolve, in real Yjs, to the highlighted code even after
someone edits above it.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
from pycrdt import Text

from demos import files_at_steps, highlight_range, load_demo
from tests.conftest import need
from tests.integration.node_driver import node_available, resolve_in_yjs
from tests.pyclient import YClient, eventually

EXAMPLE = Path(__file__).resolve().parents[2] / "demos" / "examples" / "python-loops.demo.json"
TEACHER = {"user_id": "ines", "name": "Ines", "role": "instructor"}
STUDENT = {"user_id": "sam", "name": "Sam"}


async def _join(server, tokens, room: str, who: dict) -> tuple[aiohttp.ClientSession, YClient]:
    session = aiohttp.ClientSession()
    client = YClient(session, f"{server.ws}/rooms/{room}?ext=1&token={tokens.token(**who)}")
    await client.connect()
    await client.wait_synced()
    return session, client


def _resolve(client: YClient, pairs: list[tuple[bytes, bytes]]) -> list[str]:
    need(node_available(), "Node with tests/node's packages (npm ci in tests/node)")
    return resolve_in_yjs(client.doc.get_update(), "main.py", pairs)


async def test_copying_a_step_into_the_room_with_anchored_highlights(server, tokens):
    demo = load_demo(EXAMPLE)
    async with aiohttp.ClientSession(headers=tokens.auth(**TEACHER)) as staff:
        async with staff.put(f"{server.http}/api/demos/loops", data=EXAMPLE.read_bytes()) as r:
            assert r.status == 201
        async with staff.post(
            f"{server.http}/api/rooms", json={"id": "copy-room", "visibility": "public"}
        ) as r:
            assert r.status == 201
        async with staff.put(
            f"{server.http}/api/rooms/copy-room/files/notes.md", data=b"my notes"
        ) as r:
            assert r.status == 201
    s1, teacher = await _join(server, tokens, "copy-room", TEACHER)
    s2, student = await _join(server, tokens, "copy-room", STUDENT)
    try:
        # a student may not copy; nothing changes
        await student.send_room({"type": "demo", "action": "copy"})
        await eventually(
            lambda: any(m.get("code") == "permission-denied" for m in student.room_messages)
        )
        # load, go to the "range" step (index 2) and copy, in one burst: applied in order
        await teacher.send_room({"type": "demo", "action": "load", "demo": "loops"})
        await teacher.send_room({"type": "demo", "action": "seek", "step": "range"})
        await teacher.send_room({"type": "demo", "action": "copy"})
        await eventually(
            lambda: any(m["type"] == "demo.highlights" for m in student.room_messages),
            what="highlights",
        )
        step_files = list(files_at_steps(demo))[2]
        await eventually(lambda: student.text("main.py") == step_files["main.py"], what="files")
        assert student.text("notes.md") == "my notes"  # the room's own files stay
        shown = next(m for m in student.room_messages if m["type"] == "demo.highlights")
        assert shown["demo"] == "loops" and shown["step"] == "range"
        step = demo.steps[2]
        assert len(shown["items"]) == len(step.highlights)
        expected = []
        for hl in step.highlights:
            begin, end = highlight_range(step_files[hl.file], hl)
            expected.append(step_files[hl.file][begin:end])
        pairs = [(i["start"], i["end"]) for i in shown["items"]]
        assert _resolve(student, pairs) == expected

        # the presenter types above the highlighted code: the anchors follow it
        teacher.edit(lambda files: files["main.py"].insert(0, "# ✍️ a comment\n"))
        await eventually(lambda: (student.text("main.py") or "").startswith("# ✍️"))
        assert _resolve(student, pairs) == expected

        # a late joiner gets the state and the highlights after its hello
        s3, late = await _join(server, tokens, "copy-room", {"user_id": "bea", "name": "Bea"})
        try:
            await eventually(
                lambda: any(m["type"] == "demo.highlights" for m in late.room_messages)
            )
            kinds = [m["type"] for m in late.room_messages]
            assert kinds.index("hello") < kinds.index("demo.state") < kinds.index("demo.highlights")
        finally:
            await late.close()
            await s3.close()
        assert isinstance(student.files["main.py"], Text)
    finally:
        for client, session in ((teacher, s1), (student, s2)):
            await client.close()
            await session.close()
