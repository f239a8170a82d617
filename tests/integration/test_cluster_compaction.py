"""Compaction with several nodes: the node that writes folds the log, once, for everyone.

Every node counts the room's log rows (its own commits and those it receives
from the others), so without care each would encode and store the same
snapshot when the log gets long. Here one person types on node 0 while others
follow on nodes 1 and 2: node 0 folds the log, the followers never do, and
everyone still holds the stored document.

Without Redis, these tests skip outside CI and fail in CI.
"""

from __future__ import annotations

import aiohttp
from pycrdt import Text

from tests.cluster import converged, metric, py_clients, start_nodes
from tests.conftest import REDIS_URL, Tokens

EDITS = 120


async def test_only_the_writing_node_folds_the_log(
    server_factory, redis_prefix, tokens: Tokens, database_url: str, session: aiohttp.ClientSession
):
    nodes = start_nodes(server_factory, REDIS_URL, redis_prefix, 3, "--compact-after-updates", "20")
    token = tokens.token()
    async with py_clients() as open_py:
        writer = await open_py(f"{nodes[0].ws}/rooms/folded?token={token}")
        followers = [await open_py(f"{n.ws}/rooms/folded?token={token}") for n in nodes[1:]]
        writer.edit(lambda files: files.__setitem__("main.py", Text("")))
        for i in range(EDITS):
            writer.edit(lambda files, i=i: files["main.py"].insert(0, f"{i}\n"))
        await converged([], [writer, *followers], database_url, "folded")
    assert await metric(session, nodes[0], "opencode_live_compactions_total") >= 1
    for node in nodes:
        assert await metric(session, node, "opencode_live_compactions_redundant_total") == 0
    for follower in nodes[1:]:
        assert await metric(session, follower, "opencode_live_compactions_total") == 0
