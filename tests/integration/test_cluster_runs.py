"""Runs and hourly limits with several server processes sharing rooms through Redis.

Real ``opencode-live serve`` processes on the machine's Redis (under the test's
own prefix), a real Docker Engine running the code, real pycrdt clients. What
is checked is what people in the room see, whichever node they reach: one run
per room (refused with run-busy from any node), a joiner anywhere told of the
run going on and seeing its output, typing into and stopping a run from
another node, and allowances (runs, API requests) counted once for all nodes.

Without Redis or Docker, these tests skip outside CI and fail in CI.
"""

from __future__ import annotations

import aiohttp
import pytest
from pycrdt import Text

from tests.cluster import metric, py_clients, start_nodes
from tests.conftest import REDIS_URL, Tokens
from tests.integration.node_driver import eventually
from tests.pyclient import YClient
from tests.pyclient import eventually as soon

OWNER = {"user_id": "olive", "name": "Olive"}
VIEWER = {"user_id": "vic", "name": "Vic"}
RUN_FLAGS = ("--run-pool-warm", "1", "--run-wall-seconds", "30", "--run-memory-mb", "256")

#: Prints each line it reads until its input ends (or it is stopped).
ECHO = (
    "import sys\n"
    "print('ready', flush=True)\n"
    "while True:\n"
    "    line = sys.stdin.readline()\n"
    "    if not line:\n"
    "        break\n"
    "    print('got', line.strip(), flush=True)\n"
)


def _of(client: YClient, kind: str, run: str | None = None) -> list[dict]:
    return [
        m
        for m in client.room_messages
        if m["type"] == kind and (run is None or m.get("run") == run)
    ]


def _codes(client: YClient) -> list[str]:
    return [m["code"] for m in _of(client, "notice")]


def _stdout(client: YClient, run: str) -> str:
    chunks = sorted(_of(client, "run.output", run), key=lambda m: m["seq"])
    return "".join(m["data"] for m in chunks if m["stream"] == "stdout")


async def _public_room(client: aiohttp.ClientSession, http: str, tokens: Tokens, room: str) -> None:
    body = {"id": room, "visibility": "public"}
    async with client.post(f"{http}/api/rooms", json=body, headers=tokens.auth(**OWNER)) as r:
        assert r.status == 201, await r.text()


@pytest.mark.usefixtures("docker_engine")
async def test_a_run_on_one_node_is_the_room_s_run_on_every_node(
    server_factory,
    redis_prefix,
    tokens,
    session,
):
    nodes = start_nodes(server_factory, REDIS_URL, redis_prefix, 2, *RUN_FLAGS)
    room = "cluster-run"
    await _public_room(session, nodes[0].http, tokens, room)
    owner_token = tokens.token(**OWNER)
    viewer_token = tokens.token(**VIEWER)
    async with py_clients() as open_py:
        owner = await open_py(f"{nodes[0].ws}/rooms/{room}?ext=1&token={owner_token}")
        owner.edit(lambda f: f.__setitem__("main.py", Text(ECHO)))
        await owner.send_room({"type": "run"})
        await soon(lambda: _of(owner, "run.started"), timeout=20, what="the run to start")
        run = _of(owner, "run.started")[0]["run"]
        await soon(lambda: _stdout(owner, run) == "ready\n", what="the program to be ready")

        # The same person on a second device, and a viewer, join on the other node.
        other = await open_py(f"{nodes[1].ws}/rooms/{room}?ext=1&token={owner_token}")
        viewer = await open_py(f"{nodes[1].ws}/rooms/{room}?ext=1&token={viewer_token}")
        for client in (other, viewer):
            await soon(
                lambda c=client: [m["run"] for m in _of(c, "run.started")] == [run],
                what="run.started for a joiner on node 1",
            )
        told = _of(other, "run.started")[0]
        assert (told["by"], told["entry"], told["language"]) == ("Olive", "main.py", "python")

        # A second run from node 1 is refused as on the node that holds it (socket, HTTP).
        await other.send_room({"type": "run"})
        await soon(lambda: "run-busy" in _codes(other), what="run-busy on node 1")
        async with session.post(
            f"{nodes[1].http}/api/rooms/{room}/runs", json={}, headers=tokens.auth(**OWNER)
        ) as r:
            assert r.status == 409, await r.text()

        # Node 1 checks who may type into it; a run nobody holds is no-such-run.
        await viewer.send_room({"type": "run.input", "run": run, "data": "Mallory\n"})
        await soon(lambda: "permission-denied" in _codes(viewer), what="the viewer refused")
        await other.send_room({"type": "run.stop", "run": "no-such-run-id"})
        await soon(lambda: "no-such-run" in _codes(other), what="no-such-run on node 1")

        # Input typed on node 1 reaches the program on node 0, in order; all see the output.
        for word in ("Ada", "1", "2", "3", "4"):
            await other.send_room({"type": "run.input", "run": run, "data": f"{word}\n"})
        typed = "got Ada\ngot 1\ngot 2\ngot 3\ngot 4\n"
        for client in (other, viewer):
            await soon(lambda c=client: _stdout(c, run) == typed, what="output on node 1")
        await soon(lambda: _stdout(owner, run) == "ready\n" + typed, what="output on node 0")

        # Stopped from node 1.
        await other.send_room({"type": "run.stop", "run": run})
        for client in (owner, other, viewer):
            await soon(lambda c=client: _of(c, "run.exit", run), timeout=15, what="run.exit")
            assert _of(client, "run.exit", run)[0]["status"] == "killed"

        # The room's slot is free again: a run from node 1 goes (there), seen on node 0.
        other.edit(lambda f: f.__setitem__("main.py", Text("print('second')\n")))
        await soon(lambda: owner.text("main.py") == "print('second')\n", what="the edit")
        await other.send_room({"type": "run"})
        await soon(lambda: len(_of(owner, "run.exit")) == 2, timeout=20, what="second run.exit")
        second = _of(owner, "run.exit")[-1]
        assert second["status"] == "ok" and _stdout(owner, second["run"]) == "second\n"
        assert "run-busy" not in _codes(other)[1:]


@pytest.mark.usefixtures("docker_engine")
async def test_runs_per_hour_are_counted_once_for_all_nodes(
    server_factory,
    redis_prefix,
    tokens,
    session,
):
    nodes = start_nodes(
        server_factory, REDIS_URL, redis_prefix, 2, *RUN_FLAGS, "--runs-per-hour", "3"
    )
    job = {"language": "python", "files": {"main.py": "print(1)"}}
    olive = tokens.auth(**OWNER)
    for node in (nodes[0], nodes[1], nodes[0]):
        async with session.post(f"{node.http}/api/runs", json=job, headers=olive) as r:
            assert r.status == 200, await r.text()
    for node in nodes:
        async with session.post(f"{node.http}/api/runs", json=job, headers=olive) as r:
            assert r.status == 429, await r.text()
            assert 0 < int(r.headers["Retry-After"]) <= 1200
            assert "3 runs per hour" in (await r.json())["error"]
    # A run asked for in a room, on either node, is refused too.
    async with py_clients() as open_py:
        client = await open_py(f"{nodes[1].ws}/rooms/quota?ext=1&token={tokens.token(**OWNER)}")
        client.edit(lambda f: f.__setitem__("main.py", Text("print(1)")))
        await client.send_room({"type": "run"})
        await soon(lambda: "rate-limited" in _codes(client), what="rate-limited in the room")
        assert not _of(client, "run.started")
    # The allowance is per person: someone else still runs.
    async with session.post(
        f"{nodes[1].http}/api/runs", json=job, headers=tokens.auth(**VIEWER)
    ) as r:
        assert r.status == 200, await r.text()
    # Counted in Redis, not by each node alone.
    for node in nodes:
        assert await metric(session, node, "opencode_live_shared_state_fallbacks_total") == 0


async def test_api_requests_per_hour_are_counted_once_for_all_nodes(
    server_factory,
    redis_prefix,
    tokens,
    session,
):
    nodes = start_nodes(server_factory, REDIS_URL, redis_prefix, 3, "--api-requests-per-hour", "4")
    ada = tokens.auth(user_id="ada")
    for node in (nodes[0], nodes[1], nodes[2], nodes[0]):
        async with session.get(f"{node.http}/api/me", headers=ada) as r:
            assert r.status == 200, await r.text()
    for node in nodes:
        async with session.get(f"{node.http}/api/me", headers=ada) as r:
            assert r.status == 429
            assert 0 < int(r.headers["Retry-After"]) <= 900
    async with session.get(f"{nodes[2].http}/api/me", headers=tokens.auth(user_id="bob")) as r:
        assert r.status == 200


@pytest.mark.usefixtures("docker_engine")
async def test_a_run_goes_on_while_someone_on_another_node_watches(
    server_factory,
    redis_prefix,
    tokens,
    session,
):
    """The requester leaves node 0 empty; a viewer on node 1 still sees the whole run.

    On one node, a run whose requester leaves an empty room is stopped after a
    grace of 3 s; here the room is not empty, its viewer is on another node, so
    the run (longer than the grace) finishes, and its node keeps the room meanwhile.
    """
    nodes = start_nodes(server_factory, REDIS_URL, redis_prefix, 2, *RUN_FLAGS)
    room = "cluster-watched"
    await _public_room(session, nodes[0].http, tokens, room)
    lines = "".join(f"line {i}\n" for i in range(12))
    program = (
        "import time\n"
        "for i in range(12):\n"
        "    print(f'line {i}', flush=True)\n"
        "    time.sleep(0.5)\n"
    )
    async with py_clients() as open_py:
        owner = await open_py(f"{nodes[0].ws}/rooms/{room}?ext=1&token={tokens.token(**OWNER)}")
        viewer = await open_py(f"{nodes[1].ws}/rooms/{room}?ext=1&token={tokens.token(**VIEWER)}")
        owner.edit(lambda f: f.__setitem__("main.py", Text(program)))
        await owner.send_room({"type": "run"})
        await soon(lambda: _of(viewer, "run.started"), timeout=20, what="the run to start")
        run = _of(viewer, "run.started")[0]["run"]
        await soon(lambda: "line 0" in _stdout(viewer, run), what="the first line on node 1")
        await owner.close()
        await soon(lambda: _of(viewer, "run.exit", run), timeout=30, what="run.exit on node 1")
        assert _of(viewer, "run.exit", run)[0]["status"] == "ok"
        assert _stdout(viewer, run) == lines


async def test_room_listings_count_connections_on_every_node(
    server_factory,
    redis_prefix,
    tokens,
    session,
):
    nodes = start_nodes(server_factory, REDIS_URL, redis_prefix, 2)
    room = "cluster-count"
    await _public_room(session, nodes[0].http, tokens, room)
    owner = tokens.auth(**OWNER)

    async def counted(node: int) -> tuple[int, int]:
        async with session.get(f"{nodes[node].http}/api/rooms/{room}", headers=owner) as r:
            one = (await r.json())["connections"]
        async with session.get(f"{nodes[node].http}/api/rooms", headers=owner) as r:
            listed = next(x for x in (await r.json())["rooms"] if x["id"] == room)["connections"]
        return one, listed

    async with py_clients() as open_py:
        here = [
            await open_py(f"{nodes[0].ws}/rooms/{room}?token={tokens.token(**VIEWER)}")
            for _ in range(2)
        ]
        await open_py(f"{nodes[1].ws}/rooms/{room}?token={tokens.token(**OWNER)}")
        for node in (0, 1):
            await eventually(
                lambda n=node: _equals(counted(n), (3, 3)),
                what=f"3 connections seen on node {node}",
            )
        for client in here:
            await client.close()
        for node in (0, 1):
            await eventually(
                lambda n=node: _equals(counted(n), (1, 1)), what=f"1 seen on {node}", interval=0.2
            )


async def _equals(value, expected) -> bool:
    return await value == expected
