"""A room's demo shared by several server processes: one state, whichever node you are on.

Real ``opencode-live serve`` processes on the machine's Redis (under a prefix
of the test's own) and Postgres, with pycrdt clients speaking the extension
channel. What is checked is what presenters and viewers see: a viewer joining
on a node that never saw a command lands where the demo is; a presenter on
another node moves the demo on from where it is (not from an idle copy);
presenters on two nodes pressing at once are all applied, each once, and
every node ends in the same state; a copy's highlights reach joiners elsewhere.

Without Redis, these tests skip outside CI and fail in CI.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.cluster import EXAMPLES, TEACHER, PrivateRedis, py_clients, start_nodes
from tests.conftest import REDIS_URL, ServerProcess, Tokens
from tests.integration.node_driver import eventually
from tests.pyclient import YClient
from tests.pyclient import eventually as soon

ASSISTANT = {"role": "teaching_assistant", "user_id": "tariq", "name": "Tariq"}


async def _put_demo(
    session: aiohttp.ClientSession, node: ServerProcess, staff: dict[str, str], name: str, file: str
) -> None:
    body = (EXAMPLES / file).read_bytes()
    async with session.put(f"{node.http}/api/demos/{name}", data=body, headers=staff) as resp:
        assert resp.status in (200, 201), await resp.text()


async def _room(
    session: aiohttp.ClientSession, node: ServerProcess, staff: dict[str, str], room: str
) -> None:
    body = {"id": room, "visibility": "public"}
    async with session.post(f"{node.http}/api/rooms", json=body, headers=staff) as resp:
        assert resp.status == 201, await resp.text()


def _states(client: YClient) -> list[dict[str, Any]]:
    return [m for m in client.room_messages if m["type"] == "demo.state"]


def _errors(client: YClient) -> list[dict[str, Any]]:
    return [m for m in client.room_messages if m["type"] == "notice" and m["level"] == "error"]


async def test_a_joiner_on_another_node_lands_where_the_demo_is(
    server_factory, redis_prefix, tokens: Tokens, session
):
    """Node 1 loads the room only after the demo was loaded and moved on node 0."""
    nodes = start_nodes(server_factory, REDIS_URL, redis_prefix, 2)
    staff = tokens.auth(**TEACHER)
    await _put_demo(session, nodes[0], staff, "loops", "python-loops.demo.json")
    await _room(session, nodes[0], staff, "demo-join")
    async with py_clients() as open_py:
        presenter = await open_py(
            f"{nodes[0].ws}/rooms/demo-join?ext=1&token={tokens.token(**TEACHER)}"
        )
        await presenter.send_room({"type": "demo", "action": "load", "demo": "loops"})
        await presenter.send_room({"type": "demo", "action": "next"})
        await presenter.send_room({"type": "demo", "action": "next"})
        await soon(
            lambda: any(s["position"] == 2.0 for s in _states(presenter)),
            what="the presenter at step 2",
        )
        viewer = await open_py(
            f"{nodes[1].ws}/rooms/demo-join?ext=1&token={tokens.token(user_id='sam', name='Sam')}"
        )
        await soon(lambda: bool(_states(viewer)), what="a demo state in the viewer's greeting")
        first = _states(viewer)[0]
        assert first["demo"] == "loops" and first["position"] == 2.0, first
        assert first["by"] == TEACHER["name"] and first["kind"] == "walkthrough", first
        assert not _errors(viewer) and not _errors(presenter)


async def test_presenters_on_two_nodes_move_one_demo(
    server_factory, redis_prefix, tokens: Tokens, session
):
    """Each presenter's commands apply to the demo as it is, whoever pressed last and where."""
    nodes = start_nodes(server_factory, REDIS_URL, redis_prefix, 3)
    staff = tokens.auth(**TEACHER)
    await _put_demo(session, nodes[0], staff, "loops", "python-loops.demo.json")
    await _room(session, nodes[0], staff, "demo-two")
    async with py_clients() as open_py:
        ines = await open_py(f"{nodes[0].ws}/rooms/demo-two?ext=1&token={tokens.token(**TEACHER)}")
        tariq = await open_py(
            f"{nodes[1].ws}/rooms/demo-two?ext=1&token={tokens.token(**ASSISTANT)}"
        )
        viewer = await open_py(
            f"{nodes[2].ws}/rooms/demo-two?ext=1&token={tokens.token(user_id='sam', name='Sam')}"
        )
        await ines.send_room({"type": "demo", "action": "load", "demo": "loops"})
        await soon(
            lambda: any(s["demo"] == "loops" for s in _states(tariq)), what="the load on node 1"
        )
        # Node 1 never loaded the demo itself: its presenter still moves it on.
        await tariq.send_room({"type": "demo", "action": "next"})
        await soon(
            lambda: any(s["position"] == 1.0 and s["by"] == "Tariq" for s in _states(viewer)),
            what="Tariq's next on node 2",
        )
        # Both press next twice at once: four nexts from step 1, each applied once.
        await asyncio.gather(
            ines.send_room({"type": "demo", "action": "next"}),
            tariq.send_room({"type": "demo", "action": "next"}),
            ines.send_room({"type": "demo", "action": "next"}),
            tariq.send_room({"type": "demo", "action": "next"}),
        )
        clients = (ines, tariq, viewer)
        # Four nexts from step 1 would pass the last step (4): exactly one is refused.
        await soon(
            lambda: (
                all(_states(c)[-1]["position"] == 4.0 for c in clients)
                and len(_errors(ines)) + len(_errors(tariq)) == 1
            ),
            what="every node at the last step, with one next refused",
        )
        refusals = _errors(ines) + _errors(tariq)
        assert refusals[0]["code"] == "bad-demo-command", refusals
        assert "last step" in refusals[0]["text"], refusals
        finals = [_states(c)[-1] for c in clients]
        assert all(f == finals[0] for f in finals), finals
        # Each node's viewers saw the positions in order, never back.
        for client in clients:
            positions = [s["position"] for s in _states(client) if s["demo"] == "loops"]
            assert positions == sorted(positions), positions


async def test_a_copy_and_an_unload_reach_every_node(
    server_factory, redis_prefix, tokens: Tokens, session
):
    nodes = start_nodes(server_factory, REDIS_URL, redis_prefix, 2)
    staff = tokens.auth(**TEACHER)
    await _put_demo(session, nodes[0], staff, "loops", "python-loops.demo.json")
    await _room(session, nodes[0], staff, "demo-copy")
    async with py_clients() as open_py:
        ines = await open_py(f"{nodes[0].ws}/rooms/demo-copy?ext=1&token={tokens.token(**TEACHER)}")
        await ines.send_room({"type": "demo", "action": "load", "demo": "loops"})
        await ines.send_room({"type": "demo", "action": "seek", "step": "range"})
        await soon(lambda: any(s["position"] > 0 for s in _states(ines)), what="the seek on node 0")
        await ines.send_room({"type": "demo", "action": "copy"})
        await soon(
            lambda: any(m["type"] == "demo.highlights" for m in ines.room_messages),
            what="the copy's highlights on node 0",
        )
        late = await open_py(
            f"{nodes[1].ws}/rooms/demo-copy?ext=1&token={tokens.token(user_id='ana', name='Ana')}"
        )
        await soon(
            lambda: any(m["type"] == "demo.highlights" for m in late.room_messages),
            what="the highlights in a joiner's greeting on node 1",
        )
        copied = next(m for m in late.room_messages if m["type"] == "demo.highlights")
        assert copied["demo"] == "loops" and copied["step"] == "range", copied
        assert copied["items"], copied
        await soon(lambda: late.text("main.py") is not None, what="the copied files on node 1")
        await ines.send_room({"type": "demo", "action": "unload"})
        await soon(
            lambda: bool(_states(late)) and _states(late)[-1]["demo"] is None,
            what="the unload on node 1",
        )
        assert not _errors(ines) and not _errors(late)


async def test_a_demo_moved_while_redis_is_away_reaches_the_other_node_after(
    server_factory, private_redis: PrivateRedis, tokens: Tokens, session
):
    """Commands apply on the presenter's node alone meanwhile; the last one wins after."""
    nodes = start_nodes(
        server_factory, private_redis.url, "ocl-test:", 2, "--bus-check-seconds", "0"
    )
    staff = tokens.auth(**TEACHER)
    await _put_demo(session, nodes[0], staff, "loops", "python-loops.demo.json")
    await _room(session, nodes[0], staff, "demo-outage")
    async with py_clients() as open_py:
        ines = await open_py(
            f"{nodes[0].ws}/rooms/demo-outage?ext=1&token={tokens.token(**TEACHER)}"
        )
        sam = await open_py(
            f"{nodes[1].ws}/rooms/demo-outage?ext=1&token={tokens.token(user_id='sam', name='Sam')}"
        )
        await ines.send_room({"type": "demo", "action": "load", "demo": "loops"})
        await soon(lambda: bool(_states(sam)), what="the load on node 1")
        private_redis.stop()

        async def redis_reported_down() -> bool:
            async with session.get(f"{nodes[0].http}/readyz") as resp:
                body = await resp.json()
            return resp.status == 200 and body["checks"]["redis"] != "ok"

        await eventually(redis_reported_down, what="readyz to report Redis away")
        await ines.send_room({"type": "demo", "action": "next"})
        await ines.send_room({"type": "demo", "action": "next"})
        await soon(lambda: _states(ines)[-1]["position"] == 2.0, what="node 0 moving on by itself")
        assert _states(sam)[-1]["position"] == 0.0
        private_redis.start()
        await soon(
            lambda: _states(sam)[-1]["position"] == 2.0,
            timeout=30,
            what="node 1 at step 2 once Redis is back",
        )
        # And the record stored again is the one every node follows from now on.
        await ines.send_room({"type": "demo", "action": "next"})
        await soon(lambda: _states(sam)[-1]["position"] == 3.0, what="the next step on node 1")
        assert not _errors(ines)
