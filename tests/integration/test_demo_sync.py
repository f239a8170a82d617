"""Synchronized playback at the real server: every viewer gets the same state, late or not.

The presenter (an instructor) and the viewers (students in a public room) are
real y-websocket clients that opted in to the room extension (``?ext=1``).
These tests check *what* everyone receives, never how fast: the sync-accuracy
figures are ``bench/sync.py``'s business.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from demos import ClockSync, Follower
from demos.clock import BURST_COUNT, ping_delay
from demos.follower import state_from_message
from tests.pyclient import YClient, eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "demos" / "examples"
TEACHER = {"role": "instructor", "user_id": "ines", "name": "Ines"}
STUDENTS = [{"user_id": f"student-{i}", "name": f"Student {i}"} for i in range(4)]
_ping_ids = itertools.count(1)


async def _publish(server, tokens, demo_id: str, body: bytes) -> None:
    async with aiohttp.ClientSession(headers=tokens.auth(**TEACHER)) as staff:
        async with staff.put(f"{server.http}/api/demos/{demo_id}", data=body) as resp:
            assert resp.status in (200, 201), await resp.text()


def _long_recording() -> bytes:
    """The hello recording, ten minutes long: playing, it is still mid-way at the end of a test."""
    demo = json.loads((EXAMPLES / "hello-recording.demo.json").read_bytes())
    demo["recording"]["duration"] = 600.0
    return json.dumps(demo).encode()


@dataclass
class Room:
    """A public room with a presenter and viewers, all opted in to the extension."""

    server: Any
    tokens: Any
    id: str
    presenter: YClient
    viewers: list[YClient]
    sessions: list[aiohttp.ClientSession]
    clients: list[YClient]

    @property
    def everyone(self) -> list[YClient]:
        return [self.presenter, *self.viewers]

    async def join(self, who: dict[str, Any]) -> YClient:
        session = aiohttp.ClientSession()
        token = self.tokens.token(**who)
        client = YClient(session, f"{self.server.ws}/rooms/{self.id}?ext=1&token={token}")
        self.sessions.append(session)
        self.clients.append(client)
        await client.connect()
        await client.wait_synced()
        await eventually(lambda: any(m["type"] == "hello" for m in client.room_messages))
        return client

    async def command(self, body: dict[str, Any], sender: YClient | None = None) -> list[dict]:
        """A demo command from the presenter; the new ``demo.state`` as each client got it."""
        before = [len(_states(c)) for c in self.everyone]
        await (sender or self.presenter).send_room({"type": "demo", **body})
        for client, n in zip(self.everyone, before, strict=True):
            await eventually(lambda c=client, n=n: len(_states(c)) > n, what=f"state after {body}")
        return [_states(c)[n] for c, n in zip(self.everyone, before, strict=True)]


def _states(client: YClient) -> list[dict[str, Any]]:
    return [m for m in client.room_messages if m["type"] == "demo.state"]


def _notices(client: YClient, code: str) -> list[dict[str, Any]]:
    return [m for m in client.room_messages if m["type"] == "notice" and m["code"] == code]


async def _ping(client: YClient, local_now: float) -> dict[str, Any]:
    """One ping/pong; everything the server sent this client before the pong came before it."""
    ping_id = next(_ping_ids)
    await client.send_room({"type": "ping", "id": ping_id, "client_time": local_now})
    pong: list[dict[str, Any]] = []

    def answered() -> bool:
        pong[:] = [m for m in client.room_messages if m["type"] == "pong" and m["id"] == ping_id]
        return bool(pong)

    await eventually(answered, what=f"pong {ping_id}")
    return pong[0]


async def _settled(clients: list[YClient]) -> None:
    """A round trip on each socket: what the server had queued for them has arrived."""
    await asyncio.gather(*(_ping(c, 0.0) for c in clients))


@pytest.fixture
async def room(server, tokens) -> AsyncIterator[Room]:
    await _publish(server, tokens, "hello", (EXAMPLES / "hello-recording.demo.json").read_bytes())
    await _publish(server, tokens, "hello-long", _long_recording())
    await _publish(server, tokens, "loops", (EXAMPLES / "python-loops.demo.json").read_bytes())
    async with aiohttp.ClientSession(headers=tokens.auth(**TEACHER)) as staff:
        body = {"id": "class-demo", "visibility": "public"}
        async with staff.post(f"{server.http}/api/rooms", json=body) as resp:
            assert resp.status == 201, await resp.text()
    r = Room(server, tokens, "class-demo", None, [], [], [])  # type: ignore[arg-type]
    try:
        r.presenter = await r.join(TEACHER)
        for who in STUDENTS[:3]:
            r.viewers.append(await r.join(who))
        for viewer in r.viewers:
            hello = next(m for m in viewer.room_messages if m["type"] == "hello")
            assert hello["role"] == "viewer" and hello["can_edit"] is False
        yield r
    finally:
        for client in r.clients:
            await client.close()
        for session in r.sessions:
            await session.close()


async def test_every_command_reaches_every_viewer_as_the_same_state(room: Room):
    loaded = await room.command({"action": "load", "demo": "hello"})
    assert loaded[0]["demo"] == "hello" and loaded[0]["kind"] == "recording"
    assert all(s == loaded[0] for s in loaded)

    # a recording: seek to a time, to a marker, play, change the rate
    expected = [
        ({"action": "seek", "position": 1.5}, {"position": 1.5, "playing": False}),
        ({"action": "seek", "marker": "Run"}, {"position": 1.2}),
        ({"action": "play"}, {"position": 1.2, "playing": True}),
        ({"action": "rate", "rate": 0.5}, {"rate": 0.5, "playing": True}),
        ({"action": "pause"}, {"playing": False, "rate": 0.5}),
        ({"action": "seek", "marker": "Start"}, {"position": 0.0, "playing": False}),
    ]
    # and a walkthrough: load it, seek to a step by id, next, prev
    expected += [
        ({"action": "load", "demo": "loops"}, {"demo": "loops", "kind": "walkthrough"}),
        ({"action": "seek", "step": "range"}, {"position": 2.0}),
        ({"action": "next"}, {"position": 3.0}),
        ({"action": "prev"}, {"position": 2.0}),
        ({"action": "seek", "position": 0}, {"position": 0.0}),
    ]
    previous_at = loaded[0]["at"]
    for body, fields in expected:
        got = await room.command(body)
        first = got[0]
        # the same message for everyone, the moment it takes effect included
        assert all(s == first for s in got), (body, got)
        assert {k: first[k] for k in fields} == fields, (body, first)
        assert first["by"] == "Ines"
        assert first["at"] >= previous_at
        previous_at = first["at"]
    # nothing else was sent meanwhile: one state per command, in the same order for all
    histories = [[(s["position"], s["at"]) for s in _states(c)] for c in room.everyone]
    assert all(h == histories[0] for h in histories)
    assert len(histories[0]) == 1 + len(expected)
    for client in room.everyone:
        assert not [m for m in client.room_messages if m["type"] == "notice"]


async def test_a_late_joiner_lands_where_everyone_is_and_nobody_else_notices(room: Room):
    await room.command({"action": "load", "demo": "hello-long"})
    await room.command({"action": "seek", "position": 100.0})
    await room.command({"action": "rate", "rate": 1.5})
    playing = (await room.command({"action": "play"}))[0]
    await _settled(room.everyone)
    seen = [(len(c.received), len(c.room_messages)) for c in room.everyone]

    late = await room.join(STUDENTS[3])
    await eventually(lambda: len(_states(late)) == 1, what="the late joiner's state")
    kinds = [m["type"] for m in late.room_messages]
    # the current state, right after the hello
    assert kinds[kinds.index("hello") + 1] == "demo.state"
    state = _states(late)[0]
    assert state == playing  # the very state everyone has, the same `at` included

    # Its clock is 2.5 s behind the server's; a burst of real pings finds the offset.
    skew_ms = -2500.0

    def local_now() -> float:
        return time.time() * 1000.0 + skew_ms

    sync = ClockSync()
    for sent in range(BURST_COUNT):
        await asyncio.sleep(ping_delay(sent) / 1000.0)
        t0 = local_now()
        pong = await _ping(late, t0)
        assert pong["client_time"] == t0
        sync.add(t0, pong["server_time"], local_now())
    assert sync.offset is not None
    assert sync.offset == pytest.approx(-skew_ms, abs=25.0)

    follower = Follower(sync)
    follower.update(state)
    now = local_now()
    shown = follower.tick(now)
    # where the server says the demo is at this very instant (one machine: one clock)
    truth = state_from_message(state).position_at(now - skew_ms)
    assert truth > 100.0  # it is playing, mid-way
    assert shown == pytest.approx(truth, abs=0.05)  # at once: no catching up, no seek
    assert follower.seeks == 0

    # Nobody else got anything from the join: no pause, no new state, no notice.
    await _settled(room.everyone)
    for client, (frames, messages) in zip(room.everyone, seen, strict=True):
        # (the demo's questions, sent once after its load at their own pace, are not news)
        new = [m for m in client.room_messages[messages:] if m["type"] != "questions"]
        assert [m["type"] for m in new] == ["pong"], new
        new_frames = [f for f in client.received[frames:] if b"\xa9questions" not in f]
        assert len(new_frames) == 1  # the pong's frame, and nothing else
    assert all(_states(c)[-1] == playing for c in room.everyone)


async def test_students_cannot_control_and_the_state_does_not_change(room: Room):
    await room.command({"action": "load", "demo": "hello-long"})
    playing = (await room.command({"action": "play"}))[0]
    before = [len(_states(c)) for c in room.everyone]

    student = room.viewers[0]
    attempts = [
        {"action": "pause"},
        {"action": "seek", "position": 300.0},
        {"action": "seek", "marker": "Run"},
        {"action": "rate", "rate": 2.0},
        {"action": "load", "demo": "loops"},
        {"action": "unload"},
    ]
    for body in attempts:
        await student.send_room({"type": "demo", **body})
    await eventually(
        lambda: len(_notices(student, "permission-denied")) == len(attempts), what="refusals"
    )
    notice = _notices(student, "permission-denied")[0]
    assert notice["level"] == "error" and "instructor or teaching assistant" in notice["text"]

    # a load of a demo that is not in the library: refused, and what plays goes on
    await room.presenter.send_room({"type": "demo", "action": "load", "demo": "no-such"})
    await eventually(lambda: bool(_notices(room.presenter, "no-such-demo")), what="no-such-demo")
    assert "no-such" in _notices(room.presenter, "no-such-demo")[0]["text"]

    await _settled(room.everyone)
    assert [len(_states(c)) for c in room.everyone] == before
    assert all(_states(c)[-1] == playing for c in room.everyone)
    for client in room.everyone:
        if client is not student:
            assert not _notices(client, "permission-denied")
    assert all(not _notices(c, "no-such-demo") for c in room.viewers)


async def test_a_big_demo_costs_viewers_the_same_small_message(room: Room):
    """The state is all that travels through the room, whatever the demo's size."""
    demo = json.loads(_long_recording())
    line = "x" * 199 + "\n"
    demo["recording"]["events"] += [
        {"type": "output", "t": 2.0 + i * 0.25, "stream": "stdout", "data": line, "run": "r1"}
        for i in range(2000)
    ]
    body = json.dumps(demo).encode()
    assert len(body) > 400_000  # more than one read of the request body
    await _publish(room.server, room.tokens, "big", body)

    frames = []
    for demo_id in ("hello-long", "big"):
        await room.command({"action": "load", "demo": demo_id})
        viewer = room.viewers[0]
        seen = len(viewer.received)
        got = await room.command({"action": "seek", "position": 42.0})
        assert all(s["demo"] == demo_id and s["position"] == 42.0 for s in got)
        # one frame for the change (a load also brings the demo's questions, at its own pace)
        new = [f for f in viewer.received[seen:] if b"demo.state" in f]
        assert len(new) == 1
        frames.append(len(new[0]))
    assert max(frames) < 200
    assert abs(frames[0] - frames[1]) <= 8  # the ids differ by a few characters
