"""The whole many-node shape: three server processes without Docker, two run workers.

Real ``opencode-live serve`` processes share rooms through Redis (``REDIS_URL``)
and send runs to a Redis stream (``--run-queue redis``); their Docker host points
nowhere, so only the two real ``opencode-live worker`` processes can run code.
One person starts a run on node 0, a viewer follows on node 1, and the same
person types into it and stops it from node 2.

Without Redis or Docker, these tests skip outside CI and fail in CI.
"""

from __future__ import annotations

import pytest
from pycrdt import Text

from tests.cluster import py_clients
from tests.conftest import REDIS_URL
from tests.integration.test_cluster_runs import ECHO, OWNER, VIEWER, _of, _public_room, _stdout
from tests.integration.test_run_workers import NO_DOCKER, queue_flags
from tests.pyclient import eventually as soon

pytestmark = pytest.mark.usefixtures("docker_engine")


async def test_three_nodes_and_two_workers_run_one_room_s_code(
    redis_prefix, server_factory, worker_factory, tokens, session
):
    queue = f"{redis_prefix}queue:"
    worker_factory(queue)
    worker_factory(queue)
    env = {"REDIS_URL": REDIS_URL, "OPENCODE_LIVE_BUS_PREFIX": redis_prefix, **NO_DOCKER}
    nodes = [
        server_factory("--unload-grace-seconds", "0.5", *queue_flags(queue), env=env)
        for _ in range(3)
    ]
    room = "cluster-workers"
    await _public_room(session, nodes[0].http, tokens, room)
    owner_token = tokens.token(**OWNER)
    async with py_clients() as open_py:
        owner = await open_py(f"{nodes[0].ws}/rooms/{room}?ext=1&token={owner_token}")
        viewer = await open_py(f"{nodes[1].ws}/rooms/{room}?ext=1&token={tokens.token(**VIEWER)}")
        other = await open_py(f"{nodes[2].ws}/rooms/{room}?ext=1&token={owner_token}")
        owner.edit(lambda f: f.__setitem__("main.py", Text(ECHO)))
        await soon(lambda: other.text("main.py") == ECHO, what="the program on node 2")
        await owner.send_room({"type": "run"})
        clients = (owner, viewer, other)
        for client in clients:
            await soon(lambda c=client: _of(c, "run.started"), timeout=20, what="run.started")
        run = _of(owner, "run.started")[0]["run"]
        for client in clients:
            await soon(lambda c=client: _stdout(c, run) == "ready\n", what="the first line")
        await other.send_room({"type": "run.input", "run": run, "data": "Ada\n"})
        for client in clients:
            await soon(lambda c=client: _stdout(c, run) == "ready\ngot Ada\n", what="the input")
        await other.send_room({"type": "run.stop", "run": run})
        for client in clients:
            await soon(lambda c=client: _of(c, "run.exit", run), timeout=15, what="run.exit")
            assert _of(client, "run.exit", run)[0]["status"] == "killed"
        for node in nodes:
            async with session.get(f"{node.http}/readyz") as resp:
                checks = (await resp.json())["checks"]
            assert checks["redis"] == "ok" and checks["runs"] == "ok", checks
