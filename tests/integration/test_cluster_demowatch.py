"""Live demo watching with several nodes: what a viewer watched follows them between nodes.

Two real ``opencode-live serve`` processes on Redis and Postgres. A student
watches the first steps of a walkthrough on node 1, leaves, and watches on
from node 0: the steps seen on both nodes add up to the 0.5 milestone, which
neither node's part reaches alone.

Without Redis, these tests skip outside CI and fail in CI.
"""

from __future__ import annotations

import asyncpg

from server.tokens import subject_uuid
from tests.cluster import EXAMPLES, TEACHER, py_clients, start_nodes
from tests.conftest import REDIS_URL, Tokens
from tests.integration.node_driver import eventually
from tests.pyclient import YClient
from tests.pyclient import eventually as soon

SAM = {"user_id": "sam", "name": "Sam"}


def _at(client: YClient, position: float) -> bool:
    states = [m for m in client.room_messages if m["type"] == "demo.state"]
    return bool(states) and states[-1]["position"] == position


async def test_what_a_viewer_watched_on_one_node_counts_on_the_next(
    redis_prefix, server_factory, tokens: Tokens, database_url: str, session
):
    nodes = start_nodes(server_factory, REDIS_URL, redis_prefix, 2)
    staff = tokens.auth(**TEACHER)
    body = (EXAMPLES / "python-loops.demo.json").read_bytes()  # a walkthrough of 5 steps
    async with session.put(f"{nodes[0].http}/api/demos/loops", data=body, headers=staff) as resp:
        assert resp.status in (200, 201), await resp.text()
    room = {"id": "watched", "visibility": "public"}
    async with session.post(f"{nodes[0].http}/api/rooms", json=room, headers=staff) as resp:
        assert resp.status == 201, await resp.text()
    url = "/rooms/watched?ext=1&token="
    async with py_clients() as open_py:
        ines = await open_py(f"{nodes[0].ws}{url}{tokens.token(**TEACHER)}")
        await ines.send_room({"type": "demo", "action": "load", "demo": "loops"})
        sam = await open_py(f"{nodes[1].ws}{url}{tokens.token(**SAM)}")
        await soon(lambda: _at(sam, 0.0), what="Sam at step 0 on node 1")
        await ines.send_room({"type": "demo", "action": "next"})
        await soon(lambda: _at(sam, 1.0), what="Sam at step 1 on node 1")
        await sam.close()  # steps 0 and 1 seen on node 1: 2 of 5
        sam = await open_py(f"{nodes[0].ws}{url}{tokens.token(**SAM)}")
        await soon(lambda: _at(sam, 1.0), what="Sam back, on node 0")
        await ines.send_room({"type": "demo", "action": "next"})
        await soon(lambda: _at(sam, 2.0), what="Sam at step 2 on node 0")  # 3 of 5

        async def milestone() -> bool:
            conn = await asyncpg.connect(database_url)
            try:
                keys = await conn.fetch(
                    "SELECT idempotency_key FROM progress_events "
                    "WHERE type = 'demo.watched' AND user_id = $1",
                    subject_uuid("sam"),
                )
            finally:
                await conn.close()
            return [k["idempotency_key"] for k in keys] == [
                f"demo:loops:{subject_uuid('sam')}:live:0.5"
            ]

        await eventually(milestone, timeout=15, what="the 0.5 milestone", interval=0.2)
