"""Room roles at the real server: viewers cannot edit, private rooms stay private."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from pycrdt import Text

from crdt import MessageKind, parse_frame
from rooms import CloseCode
from tests.pyclient import YClient, eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "demos" / "examples"

OWNER = {"user_id": "olive", "name": "Olive", "cohort": "2026-a"}
STUDENT_A = {"user_id": "sam", "name": "Sam", "cohort": "2026-a"}
STUDENT_B = {"user_id": "bea", "name": "Bea", "cohort": "2026-b"}


@pytest.fixture
async def as_owner(tokens):
    async with aiohttp.ClientSession(headers=tokens.auth(**OWNER)) as s:
        yield s


async def _create(session, server, room: str, **rules) -> dict:
    async with session.post(f"{server.http}/api/rooms", json={"id": room, **rules}) as resp:
        assert resp.status == 201, await resp.text()
        return await resp.json()


async def _join(
    server, tokens, room: str, who: dict, **kw
) -> tuple[aiohttp.ClientSession, YClient]:
    session = aiohttp.ClientSession()
    client = YClient(session, f"{server.ws}/rooms/{room}?ext=1&token={tokens.token(**who)}", **kw)
    await client.connect()
    await client.wait_synced()
    return session, client


async def _refused(server, tokens, room: str, who: dict) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as s,
        s.get(
            f"{server.http}/rooms/{room}?token={tokens.token(**who)}",
            headers={
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version": "13",
            },
        ) as resp,
    ):
        return resp.status, json.loads(await resp.read())["error"]


def _hello(client: YClient) -> dict:
    return next(m for m in client.room_messages if m["type"] == "hello")


async def _files(session, server, room: str) -> dict[str, str]:
    async with session.get(f"{server.http}/api/rooms/{room}/files") as resp:
        assert resp.status == 200
        return (await resp.json())["files"]


async def test_viewers_update_is_refused_and_the_document_unchanged(server, tokens, as_owner):
    await _create(as_owner, server, "lecture", visibility="public")
    s1, owner = await _join(server, tokens, "lecture", OWNER)
    owner.edit(lambda f: f.__setitem__("main.py", Text("print('hi')\n")))
    s2, viewer = await _join(server, tokens, "lecture", STUDENT_B)
    try:
        await eventually(lambda: viewer.text("main.py") == "print('hi')\n", what="viewer synced")
        hello = _hello(viewer)
        assert (hello["role"], hello["can_edit"], hello["name"]) == ("viewer", False, "Bea")
        assert _hello(owner)["role"] == "owner"

        seen_by_owner = len(owner.received)
        viewer.edit(lambda f: f["main.py"].insert(0, "import os\n"))
        viewer.edit(lambda f: f.__setitem__("evil.py", Text("rm -rf /")))
        await eventually(
            lambda: sum(m.get("code") == "permission-denied" for m in viewer.room_messages) >= 2,
            what="two permission-denied notices",
        )
        notice = next(m for m in viewer.room_messages if m.get("code") == "permission-denied")
        assert "viewer" in notice["text"] and "not saved" in notice["text"]
        # the y-protocols permission-denied message too, for plain Yjs clients
        kinds = [msg.kind for frame in viewer.received for msg in parse_frame(frame)]
        assert MessageKind.AUTH in kinds
        # the owner keeps editing; what they see and what the server holds has no trace
        owner.edit(lambda f: f["main.py"].insert(len(str(f["main.py"])), "# end\n"))
        expected = {"main.py": "print('hi')\n# end\n"}
        await eventually(
            lambda: viewer.text("main.py") is not None and "# end" in viewer.text("main.py")
        )
        assert await _files(as_owner, server, "lecture") == expected
        assert owner.file_contents() == expected
        assert all(b"rm -rf" not in frame for frame in owner.received[seen_by_owner:])
        # the viewer is still connected, and their presence still reaches the room
        await viewer.set_awareness({"user": {"name": "Bea"}})
        await eventually(lambda: viewer.client_id in owner.awareness, what="viewer awareness")
        assert not viewer.closed.is_set()
    finally:
        for client, session in ((owner, s1), (viewer, s2)):
            await client.close()
            await session.close()
    # after a restart of the room, the stored document has no trace either
    async with aiohttp.ClientSession(headers=tokens.auth(**OWNER)) as s:
        assert await _files(s, server, "lecture") == expected


async def test_private_and_cohort_rooms(server, tokens, as_owner):
    await _create(as_owner, server, "mine")
    status, error = await _refused(server, tokens, "mine", STUDENT_A)
    assert status == 403 and "private" in error

    await _create(as_owner, server, "cohort-a", visibility="cohort", cohort="2026-a")
    status, error = await _refused(server, tokens, "cohort-a", STUDENT_B)
    assert status == 403 and "open to cohort '2026-a', not '2026-b'" in error
    status, error = await _refused(server, tokens, "cohort-a", {"user_id": "nocohort"})
    assert status == 403 and "names no cohort" in error
    # someone of the cohort edits it
    session, sam = await _join(server, tokens, "cohort-a", STUDENT_A)
    try:
        assert _hello(sam)["role"] == "editor"
        sam.edit(lambda f: f.__setitem__("pair.py", Text("x = 1\n")))
        async with aiohttp.ClientSession(headers=tokens.auth(**OWNER)) as s:
            for _ in range(200):
                if await _files(s, server, "cohort-a") == {"pair.py": "x = 1\n"}:
                    break
                await asyncio.sleep(0.02)
            assert await _files(s, server, "cohort-a") == {"pair.py": "x = 1\n"}
    finally:
        await sam.close()
        await session.close()
    # the listing shows each person what they may enter
    async with aiohttp.ClientSession(headers=tokens.auth(**STUDENT_B)) as s:
        async with s.get(f"{server.http}/api/rooms") as resp:
            assert [r["id"] for r in (await resp.json())["rooms"]] == []
        async with s.get(f"{server.http}/api/rooms/cohort-a/files") as resp:
            assert resp.status == 403
    async with aiohttp.ClientSession(headers=tokens.auth(**STUDENT_A)) as s:
        async with s.get(f"{server.http}/api/rooms") as resp:
            rooms = {r["id"]: r["role"] for r in (await resp.json())["rooms"]}
        assert rooms == {"cohort-a": "editor"}


async def test_a_student_cannot_promote_themself_or_manage_a_room(server, tokens, as_owner):
    await _create(as_owner, server, "class")
    async with as_owner.put(
        f"{server.http}/api/rooms/class/members/sam", json={"role": "viewer"}
    ) as resp:
        assert resp.status == 200
    async with aiohttp.ClientSession(headers=tokens.auth(**STUDENT_A)) as sam:
        for role in ("editor", "owner"):
            async with sam.put(
                f"{server.http}/api/rooms/class/members/sam", json={"role": role}
            ) as resp:
                assert resp.status == 403
                assert "your own role" in (await resp.json())["error"]
        async with sam.put(
            f"{server.http}/api/rooms/class/members/bea", json={"role": "owner"}
        ) as resp:
            assert resp.status == 403
        async with sam.patch(
            f"{server.http}/api/rooms/class", json={"visibility": "public"}
        ) as resp:
            assert resp.status == 403
            assert "needs its owner" in (await resp.json())["error"]
        # a viewer reads, but does not write through the API either
        async with sam.get(f"{server.http}/api/rooms/class/files") as resp:
            assert resp.status == 200
        async with sam.put(f"{server.http}/api/rooms/class/files/a.py", data="x") as resp:
            assert resp.status == 403
            assert "needs the editor role" in (await resp.json())["error"]
        async with sam.post(f"{server.http}/api/rooms/class/versions", json={"name": "v"}) as resp:
            assert resp.status == 403
    async with as_owner.get(f"{server.http}/api/rooms/class/members") as resp:
        members = (await resp.json())["members"]
    assert [(m["username"], m["role"]) for m in members] == [("sam", "viewer")]
    async with as_owner.get(f"{server.http}/api/rooms/class") as resp:
        assert (await resp.json())["visibility"] == "private"


async def test_role_changes_reach_connected_people_at_once(server, tokens, as_owner):
    await _create(as_owner, server, "live")
    async with as_owner.put(
        f"{server.http}/api/rooms/live/members/sam", json={"role": "editor"}
    ) as resp:
        assert resp.status == 200
    session, sam = await _join(server, tokens, "live", STUDENT_A)
    try:
        assert _hello(sam)["can_edit"] is True
        async with as_owner.put(
            f"{server.http}/api/rooms/live/members/sam", json={"role": "viewer"}
        ) as resp:
            assert resp.status == 200
        await eventually(
            lambda: any(m["type"] == "access" for m in sam.room_messages), what="access message"
        )
        access = next(m for m in sam.room_messages if m["type"] == "access")
        assert access == {"type": "access", "role": "viewer", "can_edit": False}
        sam.edit(lambda f: f.__setitem__("late.py", Text("no")))
        await eventually(
            lambda: any(m.get("code") == "permission-denied" for m in sam.room_messages)
        )
        assert await _files(as_owner, server, "live") == {}
        async with as_owner.delete(f"{server.http}/api/rooms/live/members/sam") as resp:
            assert resp.status == 204
        assert await sam.wait_closed() == CloseCode.ACCESS_REVOKED
    finally:
        await sam.close()
        await session.close()


async def test_staff_and_admin_roles(server, tokens, as_owner):
    await _create(as_owner, server, "student-room")
    ta = {"user_id": "tom", "name": "Tom", "role": "teaching_assistant"}
    admin = {"user_id": "root", "name": "Root", "role": "admin"}
    s1, helper = await _join(server, tokens, "student-room", ta)
    s2, root = await _join(server, tokens, "student-room", admin)
    try:
        assert (_hello(helper)["role"], _hello(helper)["user_role"]) == (
            "editor",
            "teaching_assistant",
        )
        assert _hello(root)["role"] == "owner"
    finally:
        for client, session in ((helper, s1), (root, s2)):
            await client.close()
            await session.close()
    async with aiohttp.ClientSession(headers=tokens.auth(**ta)) as s:
        async with s.patch(f"{server.http}/api/rooms/student-room", json={"title": "x"}) as resp:
            assert resp.status == 403  # helping is not managing
    async with aiohttp.ClientSession(headers=tokens.auth(**admin)) as s:
        async with s.patch(
            f"{server.http}/api/rooms/student-room", json={"visibility": "public", "title": "Demo"}
        ) as resp:
            assert resp.status == 200
            room = await resp.json()
            assert (room["visibility"], room["title"], room["role"]) == ("public", "Demo", "owner")


async def test_room_creation_rules(server, tokens, as_owner):
    room = await _create(as_owner, server, "fresh", title="Week 1")
    assert (room["role"], room["visibility"], room["title"]) == ("owner", "private", "Week 1")
    async with as_owner.post(f"{server.http}/api/rooms", json={"id": "fresh"}) as resp:
        assert resp.status == 409
    async with as_owner.post(f"{server.http}/api/rooms", json={"id": "../x"}) as resp:
        assert resp.status == 400
    async with as_owner.post(
        f"{server.http}/api/rooms", json={"visibility": "cohort", "cohort": "2026-b"}
    ) as resp:
        assert resp.status == 403  # a student opens rooms to their own cohort only
    async with as_owner.post(f"{server.http}/api/rooms", json={"visibility": "everyone"}) as resp:
        assert resp.status == 400
    async with as_owner.post(f"{server.http}/api/rooms", json={}) as resp:
        made = await resp.json()
        assert resp.status == 201 and made["id"]


async def test_only_staff_who_can_edit_control_a_demo(server, tokens, as_owner):
    await _create(as_owner, server, "demo-room", visibility="public")
    teacher = {"user_id": "ines", "name": "Ines", "role": "instructor"}
    recording = EXAMPLES / "hello-recording.demo.json"
    async with aiohttp.ClientSession(
        headers=tokens.auth(role="instructor", user_id="ines", name="Ines")
    ) as staff:
        async with staff.put(f"{server.http}/api/demos/loops", data=recording.read_bytes()) as resp:
            assert resp.status == 201
    s1, owner = await _join(server, tokens, "demo-room", OWNER)  # a student who owns it
    s2, presenter = await _join(server, tokens, "demo-room", teacher)
    s3, watcher = await _join(server, tokens, "demo-room", STUDENT_B)  # viewer
    clients = [(owner, s1), (presenter, s2), (watcher, s3)]
    try:
        for student in (owner, watcher):
            await student.send_room({"type": "demo", "action": "load", "demo": "loops"})
            await eventually(
                lambda student=student: any(
                    m.get("code") == "permission-denied" for m in student.room_messages
                ),
                what="refusal",
            )
        notice = next(m for m in owner.room_messages if m.get("code") == "permission-denied")
        assert "instructor or teaching assistant" in notice["text"]

        await presenter.send_room({"type": "demo", "action": "load", "demo": "loops"})
        await presenter.send_room({"type": "demo", "action": "play"})
        for client in (owner, presenter, watcher):
            await eventually(
                lambda client=client: any(
                    m["type"] == "demo.state" and m["playing"] for m in client.room_messages
                ),
                what="playing state",
            )
        states = [m for m in watcher.room_messages if m["type"] == "demo.state"]
        # the students' attempts changed nothing: the first state anyone got is the load
        assert [(m["demo"], m["playing"]) for m in states] == [("loops", False), ("loops", True)]
        assert states[-1]["by"] == "Ines" and states[-1]["at"] > 0
        assert states[-1]["kind"] == "recording" and states[-1]["duration"] > 0

        await presenter.send_room({"type": "demo", "action": "rate", "rate": 9})
        await eventually(
            lambda: any(m.get("code") == "bad-demo-command" for m in presenter.room_messages)
        )
        # a demo that is not in the library is refused, and what plays goes on
        await presenter.send_room({"type": "demo", "action": "load", "demo": "no-such"})
        await eventually(
            lambda: any(m.get("code") == "no-such-demo" for m in presenter.room_messages)
        )
        # a late joiner gets the current state right after the hello
        s4, late = await _join(server, tokens, "demo-room", STUDENT_A)
        clients.append((late, s4))
        await eventually(lambda: any(m["type"] == "demo.state" for m in late.room_messages))
        kinds = [m["type"] for m in late.room_messages]
        assert kinds.index("hello") < kinds.index("demo.state")
        assert late.room_messages[kinds.index("demo.state")]["playing"] is True
    finally:
        for client, session in clients:
            await client.close()
            await session.close()


async def test_stored_updates_name_their_author(server, tokens, as_owner, database_url):
    import asyncpg

    await _create(as_owner, server, "authored", visibility="cohort", cohort="2026-a")
    session, sam = await _join(server, tokens, "authored", STUDENT_A)
    try:
        sam.edit(lambda f: f.__setitem__("by-sam.py", Text("1")))
        async with as_owner.put(
            f"{server.http}/api/rooms/authored/files/by-olive.py", data="2"
        ) as r:
            assert r.status == 201
        await eventually(lambda: sam.text("by-olive.py") == "2")
    finally:
        await sam.close()
        await session.close()
    async with as_owner.get(f"{server.http}/api/me") as resp:
        olive = (await resp.json())["uuid"]
    async with aiohttp.ClientSession(headers=tokens.auth(**STUDENT_A)) as s:
        async with s.get(f"{server.http}/api/me") as resp:
            sam_id = (await resp.json())["uuid"]
    conn = await asyncpg.connect(database_url)
    try:
        authors = {
            str(row["author"])
            for row in await conn.fetch(
                "SELECT author FROM room_updates WHERE room_id = 'authored'"
            )
        }
    finally:
        await conn.close()
    assert authors == {olive, sam_id}
