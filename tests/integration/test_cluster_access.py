"""Role changes made on one node reach the people connected to the room on another.

Two real ``opencode-live serve`` processes on the machine's Redis (under a
prefix of the test's own): the owner changes a member's role and then removes
them through node 0's API while the member is connected to node 1. Without
the change crossing nodes, the member would keep editing on node 1.

Without Redis, these tests skip outside CI and fail in CI.
"""

from __future__ import annotations

import aiohttp
from pycrdt import Text

from rooms import CloseCode
from tests.cluster import start_nodes
from tests.conftest import REDIS_URL, Tokens
from tests.pyclient import YClient, eventually

OWNER = {"user_id": "olive", "name": "Olive", "cohort": "2026-a"}
SAM = {"user_id": "sam", "name": "Sam", "cohort": "2026-a"}


async def test_a_role_changed_on_one_node_applies_on_the_other(
    server_factory, redis_prefix, tokens: Tokens
):
    nodes = start_nodes(server_factory, REDIS_URL, redis_prefix, 2)
    async with aiohttp.ClientSession(headers=tokens.auth(**OWNER)) as owner:
        async with owner.post(f"{nodes[0].http}/api/rooms", json={"id": "roles"}) as resp:
            assert resp.status == 201, await resp.text()
        members = f"{nodes[0].http}/api/rooms/roles/members/sam"
        async with owner.put(members, json={"role": "editor"}) as resp:
            assert resp.status == 200, await resp.text()
        async with aiohttp.ClientSession() as s:
            sam = YClient(s, f"{nodes[1].ws}/rooms/roles?ext=1&token={tokens.token(**SAM)}")
            await sam.connect()
            await sam.wait_synced()
            try:
                async with owner.put(members, json={"role": "viewer"}) as resp:
                    assert resp.status == 200, await resp.text()
                await eventually(
                    lambda: any(m["type"] == "access" for m in sam.room_messages),
                    what="the new role on node 1",
                )
                access = next(m for m in sam.room_messages if m["type"] == "access")
                assert access == {"type": "access", "role": "viewer", "can_edit": False}
                sam.edit(lambda f: f.__setitem__("late.py", Text("no")))
                await eventually(
                    lambda: any(m.get("code") == "permission-denied" for m in sam.room_messages),
                    what="node 1 refusing the viewer's edit",
                )
                async with owner.delete(members) as resp:
                    assert resp.status == 204
                assert await sam.wait_closed() == CloseCode.ACCESS_REVOKED
            finally:
                await sam.close()
        async with owner.get(f"{nodes[0].http}/api/rooms/roles/files") as resp:
            assert (await resp.json())["files"] == {}
