"""Several server processes sharing rooms through Redis, on one Postgres.

Three real ``opencode-live serve`` processes with ``REDIS_URL`` set (the
machine's Redis, under a channel prefix of the test's own), real Yjs clients
(Node's y-websocket and pycrdt) spread over them. What is checked is what a
user would see: everyone converges to the same document, which is the stored
one; presence and room messages cross nodes; a node killed with ``kill -9``
loses nothing any client saw; a Redis restart leaves rooms working on each
node and converging once it is back (from the log, through a snapshot).

Without Redis, these tests skip outside CI and fail in CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import redis
from pycrdt import Doc

from crdt.document import decode_state_vector
from store import Store
from tests.cluster import EXAMPLES, TEACHER, converged, metric, py_clients, start_nodes
from tests.conftest import REDIS_URL
from tests.integration.node_driver import NodeClient, eventually
from tests.pyclient import YClient
from tests.pyclient import eventually as soon

# -- tests ---------------------------------------------------------------------------------------


async def test_clients_on_three_nodes_converge_to_the_stored_document(
    server_factory, database_url, redis_prefix, node_host, tokens, session
):
    nodes = start_nodes(server_factory, REDIS_URL, redis_prefix, 3)
    host = await node_host()
    room = "cluster-edit"
    node_clients = [await host.connect(f"n{i}", node.ws, room) for i, node in enumerate(nodes)]
    token = tokens.token()
    async with py_clients() as open_py:
        py = [await open_py(f"{node.ws}/rooms/{room}?token={token}") for node in nodes]

        async def type_py(client: YClient, index: int) -> None:
            for k in range(60):
                client.edit(lambda files, k=k: _append(files, f"py{index}.txt", f"{k},"))
                await asyncio.sleep(0.005)

        await asyncio.gather(
            *(c.random_edits("main.py", count=150, seed=i + 1) for i, c in enumerate(node_clients)),
            *(type_py(c, i) for i, c in enumerate(py)),
        )
        files = await converged(node_clients, py, database_url, room)
        for i in range(3):
            assert files[f"py{i}.txt"] == "".join(f"{k}," for k in range(60))
        assert "main.py" in files
        # Each node's own view (HTTP API) is the same document.
        for node in nodes:
            async with session.get(
                f"{node.http}/api/rooms/{room}/files", headers=tokens.auth()
            ) as resp:
                assert (await resp.json())["files"] == files
        # Updates crossed the bus, and /readyz reports Redis.
        assert await metric(session, nodes[1], "opencode_live_bus_messages_in_total") > 0
        async with session.get(f"{nodes[0].http}/readyz") as resp:
            body = await resp.json()
        assert resp.status == 200 and body["checks"]["redis"] == "ok"
        for client in node_clients:
            assert (await client.status())["errors"] == []


def _append(files: Any, path: str, text: str) -> None:
    from pycrdt import Text

    if path not in files:
        files[path] = Text()
    current = files[path]
    current.insert(len(current), text)


async def test_awareness_crosses_nodes(server_factory, redis_prefix, node_host, tokens):
    nodes = start_nodes(server_factory, REDIS_URL, redis_prefix, 3)
    host = await node_host()
    room = "cluster-presence"
    jose = await host.connect("jose", nodes[0].ws, room, user={"name": "José", "color": "#f00"})
    viewer = await host.connect("viewer", nodes[1].ws, room)
    jose_id = await jose.client_id()

    async def sees_jose(client: NodeClient) -> bool:
        state = (await client.awareness()).get(jose_id)
        return bool(state) and state["user"]["name"] == "José"

    await eventually(lambda: sees_jose(viewer), what="José's presence on node 1")
    # A late joiner on a third node gets it from that node's table at once.
    late = await host.connect("late", nodes[2].ws, room)
    await eventually(lambda: sees_jose(late), timeout=5, what="José's presence on node 2")
    # pycrdt's presence reaches the Node clients on the other nodes.
    token = tokens.token()
    async with py_clients() as open_py:
        py = await open_py(f"{nodes[2].ws}/rooms/{room}?token={token}")
        await py.set_awareness({"user": {"name": "李雷"}})

        async def sees_py() -> bool:
            state = (await jose.awareness()).get(py.client_id)
            return bool(state) and state["user"]["name"] == "李雷"

        await eventually(sees_py, what="pycrdt presence on node 0")
        await soon(lambda: jose_id in py.awareness, what="José's presence at pycrdt")
    # Leaving removes the state everywhere.
    await jose.destroy()

    async def gone(client: NodeClient) -> bool:
        return jose_id not in await client.awareness()

    await eventually(lambda: gone(viewer), what="José's removal on node 1")
    await eventually(lambda: gone(late), what="José's removal on node 2")


async def test_room_messages_cross_nodes(server_factory, redis_prefix, tokens, session):
    """A presenter on node 0 loads a demo; a viewer on node 1 gets the demo state."""
    nodes = start_nodes(server_factory, REDIS_URL, redis_prefix, 2)
    staff = tokens.auth(**TEACHER)
    body = (EXAMPLES / "hello-recording.demo.json").read_bytes()
    async with session.put(f"{nodes[0].http}/api/demos/hello", data=body, headers=staff) as resp:
        assert resp.status in (200, 201), await resp.text()
    room_body = {"id": "cluster-demo", "visibility": "public"}
    async with session.post(f"{nodes[0].http}/api/rooms", json=room_body, headers=staff) as resp:
        assert resp.status == 201, await resp.text()
    presenter_token = tokens.token(**TEACHER)
    viewer_token = tokens.token(user_id="sam", name="Sam")
    async with py_clients() as open_py:
        presenter = await open_py(f"{nodes[0].ws}/rooms/cluster-demo?ext=1&token={presenter_token}")
        viewer = await open_py(f"{nodes[1].ws}/rooms/cluster-demo?ext=1&token={viewer_token}")
        await presenter.send_room({"type": "demo", "action": "load", "demo": "hello"})

        def got_state() -> bool:
            return any(
                m["type"] == "demo.state" and m["demo"] == "hello" for m in viewer.room_messages
            )

        await soon(got_state, what="the demo state on node 1")


class Balancer:
    """A TCP load balancer in front of the nodes: round robin over those that accept."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self._next = itertools.count()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> Balancer:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = None
        for _ in range(len(self.backends)):
            port = self.backends[next(self._next) % len(self.backends)]
            try:
                upstream = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                continue
        if upstream is None:
            writer.close()
            return
        up_reader, up_writer = upstream
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._writers.difference_update((writer, up_writer))

    async def close(self) -> None:
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def test_a_node_killed_mid_stream_loses_nothing_a_client_saw(
    server_factory, database_url, redis_prefix, node_host, session
):
    nodes = start_nodes(server_factory, REDIS_URL, redis_prefix, 3)
    balancer = await Balancer([node.port for node in nodes]).start()
    try:
        host = await node_host()
        room = "cluster-crash"
        # Round robin: clients 0 and 3 land on node 0, which is killed.
        clients = [await host.connect(f"c{i}", balancer.ws, room) for i in range(6)]
        edits = [
            asyncio.ensure_future(c.random_edits("main.py", count=400, seed=i + 10))
            for i, c in enumerate(clients)
        ]
        # Kill node 0 once updates are flowing through it.
        store = await Store.open(database_url, migrate=False, min_size=1, max_size=1)
        try:

            async def logged() -> bool:
                return (await store.room_heads([room])).get(room, 0) >= 100

            await eventually(logged, timeout=20, what="updates being stored")
        finally:
            await store.close()
        nodes[0].process.kill()  # kill -9
        nodes[0].process.wait(10)
        await asyncio.gather(*edits)
        for client in clients:
            await client.wait_synced(20)
        files = await converged(clients, [], database_url, room, timeout=40)
        assert files["main.py"]
        statuses = [await c.status() for c in clients]
        assert sum(1 for s in statuses if s["stats"]["opens"] > 1) >= 2  # they reconnected
        assert await metric(session, nodes[1], "opencode_live_bus_messages_in_total") > 0
    finally:
        await balancer.close()


async def test_rooms_work_through_a_redis_restart_and_converge_after(
    server_factory, database_url, private_redis, node_host, session
):
    # No periodic check: convergence must come from the resubscription's catch-up.
    # A short compaction threshold: the catch-up has to go through a snapshot.
    nodes = start_nodes(
        server_factory,
        private_redis.url,
        "ocl-test:",
        2,
        "--bus-check-seconds",
        "0",
        "--compact-after-updates",
        "20",
    )
    host = await node_host()
    room = "cluster-outage"
    a1 = await host.connect("a1", nodes[0].ws, room)
    a2 = await host.connect("a2", nodes[0].ws, room)
    b1 = await host.connect("b1", nodes[1].ws, room)
    await a1.set_file("main.py", "before\n")
    await b1.wait_files({"main.py": "before\n"})

    private_redis.stop()

    async def redis_reported_down() -> bool:
        async with session.get(f"{nodes[0].http}/readyz") as resp:
            body = await resp.json()
        return resp.status == 200 and body["checks"]["redis"] != "ok"

    await eventually(redis_reported_down, what="readyz to report Redis away")
    # Node 0's room keeps working for the people on it.
    await a1.insert("main.py", "during-a\n")
    await a1.random_edits("a.txt", count=60, seed=3)
    await b1.insert("b.txt", "during-b\n")
    a_files = await a1.files()
    await a2.wait_files(a_files, timeout=10)

    private_redis.start()
    await converged([a1, a2, b1], [], database_url, room, timeout=30)
    assert "during-a\n" in (await b1.files())["main.py"]
    assert await metric(session, nodes[1], "opencode_live_bus_catchups_total") > 0
    # Node 0 folded its log meanwhile: node 1 caught up through the snapshot.
    assert await metric(session, nodes[0], "opencode_live_compactions_total") > 0
    assert await metric(session, nodes[1], "opencode_live_bus_snapshot_catchups_total") > 0


async def test_every_node_sends_the_same_frame_bytes(
    server_factory, redis_prefix, node_host, tokens
):
    nodes = start_nodes(server_factory, REDIS_URL, redis_prefix, 3)
    host = await node_host()
    room = "cluster-bytes"
    writer = await host.connect("writer", nodes[0].ws, room)
    token = tokens.token()
    async with py_clients() as open_py:
        readers = [await open_py(f"{node.ws}/rooms/{room}?token={token}") for node in nodes]
        await writer.set_file("a.txt", "José 李雷 🦄")
        for k in range(20):
            await writer.insert("a.txt", f" {k}")
        want = "José 李雷 🦄" + "".join(f" {k}" for k in range(20))
        for reader in readers:
            await soon(lambda r=reader: r.text("a.txt") == want, what="the edits everywhere")

        def updates(client: YClient) -> list[bytes]:
            return [frame for frame in client.received if frame[:2] == b"\x00\x02"]

        # Same updates, same bytes, once each, in the same order on every node.
        assert len(updates(readers[0])) == 21
        assert updates(readers[1]) == updates(readers[0]) == updates(readers[2])


async def test_a_node_follows_only_the_rooms_it_holds(server_factory, redis_prefix, node_host):
    nodes = start_nodes(server_factory, REDIS_URL, redis_prefix, 2)
    host = await node_host()
    channel = f"{redis_prefix}room:cluster-follow"
    client = redis.Redis.from_url(REDIS_URL)

    async def subscribers(count: int) -> bool:
        return client.pubsub_numsub(channel)[0][1] == count

    try:
        assert await subscribers(0)
        a = await host.connect("a", nodes[0].ws, "cluster-follow")
        await eventually(lambda: subscribers(1), what="node 0 to subscribe")
        b = await host.connect("b", nodes[1].ws, "cluster-follow")
        await eventually(lambda: subscribers(2), what="node 1 to subscribe")
        await b.destroy()  # node 1 unloads the room after its grace and unsubscribes
        await eventually(lambda: subscribers(1), what="node 1 to unsubscribe")
        await a.set_file("still.txt", "here")
        await a.destroy()
        await eventually(lambda: subscribers(0), what="node 0 to unsubscribe")
    finally:
        client.close()


async def test_a_node_leaving_with_sigterm_hands_its_clients_to_the_others(
    server_factory, database_url, redis_prefix, node_host, tokens, session
):
    """SIGTERM on one of three nodes behind a balancer, while everyone edits.

    Its clients get close code 1001 (after the queued frames), reconnect through the
    balancer to the two nodes left and lose nothing: every update any client held
    when the node left is in the converged document and in Postgres. The clients of
    the other nodes are never disconnected, and those nodes stay ready.
    """
    nodes = start_nodes(server_factory, REDIS_URL, redis_prefix, 3)
    balancer = await Balancer([node.port for node in nodes]).start()
    store = await Store.open(database_url, migrate=False, min_size=1, max_size=1)
    room = "cluster-leave"
    done = asyncio.Event()

    async def head() -> int:
        return (await store.room_heads([room])).get(room, 0)

    try:
        host = await node_host()
        # Round robin: connections 0, 3 (Node) and 6 (the first pycrdt one) land on node 0.
        clients = [await host.connect(f"c{i}", balancer.ws, room) for i in range(6)]
        token = tokens.token()
        async with py_clients() as open_py:
            py = [await open_py(f"{balancer.ws}/rooms/{room}?token={token}") for _ in range(3)]
            py_codes: list[int | None] = []
            py_seen: list[dict[int, int]] = []

            async def type_node(client: NodeClient, index: int) -> None:
                for batch in itertools.count():
                    if done.is_set():
                        return
                    await client.random_edits("main.py", count=20, seed=index * 1000 + batch)

            async def type_py(client: YClient, index: int) -> None:
                for k in itertools.count():
                    if done.is_set():
                        return
                    if client.closed.is_set():  # pycrdt's client does not reconnect by itself
                        py_codes.append(client.close_code)
                        py_seen.append(decode_state_vector(client.doc.get_state()))
                        await client.connect()
                        await client.wait_synced(15)
                    client.edit(lambda files, k=k: _append(files, f"py{index}.txt", f"{k},"))
                    await asyncio.sleep(0.01)  # typing pace, not a wait

            typing = [
                *(asyncio.ensure_future(type_node(c, i)) for i, c in enumerate(clients)),
                *(asyncio.ensure_future(type_py(c, i)) for i, c in enumerate(py)),
            ]
            try:
                await eventually(lambda: _at_least(head, 100), timeout=20, what="stored updates")
                nodes[0].process.send_signal(signal.SIGTERM)
                leaving = [clients[0], clients[3]]

                async def handed_over() -> bool:
                    statuses = [await c.status() for c in leaving]
                    return bool(py_codes) and all(
                        s["stats"]["opens"] >= 2 and s["synced"] for s in statuses
                    )

                await eventually(handed_over, timeout=30, what="node 0's clients to reconnect")
                # What every client holds now, the leaving node's clients included.
                seen = [(await c.state_vector())["clocks"] for c in clients]
                seen = [{int(k): v for k, v in sv.items()} for sv in seen] + py_seen
                # Editing goes on through the two nodes left, then stops.
                after = await head()
                await eventually(
                    lambda: _at_least(head, after + 100), timeout=30, what="edits after the leave"
                )
            finally:
                done.set()
                await asyncio.gather(*typing)
            assert nodes[0].process.wait(20) == 0  # a clean exit, not a kill

            for client in clients:
                await client.wait_synced(20)
            files = await converged(clients, py, database_url, room, timeout=40)
            assert files["main.py"]
            for i in range(3):
                typed = files[f"py{i}.txt"].split(",")[:-1]
                assert typed == [str(k) for k in range(len(typed))]  # every keystroke, in order

            # Every update any client saw is in the stored document.
            record = await store.load_room(room)
            stored_doc = Doc()
            for update in record.as_updates():
                stored_doc.apply_update(update)
            stored = decode_state_vector(stored_doc.get_state())
            for sv in seen:
                missing = {c: k for c, k in sv.items() if stored.get(c, 0) < k}
                assert not missing, f"updates seen by a client but not stored: {missing}"

            # The leaving node's clients were closed with 1001 and came back elsewhere.
            assert py_codes == [1001]
            for client in leaving:
                status = await client.status()
                assert status["closes"][0]["code"] == 1001, status["closes"]
                assert status["stats"]["opens"] >= 2
            # The other nodes' clients were never disconnected, and those nodes are ready.
            for client in (clients[1], clients[2], clients[4], clients[5]):
                status = await client.status()
                assert status["closes"] == [] and status["stats"]["opens"] == 1, status
                assert status["errors"] == []
            assert not py[1].closed.is_set() and not py[2].closed.is_set()
            for node in nodes[1:]:
                assert node.process.poll() is None
                async with session.get(f"{node.http}/readyz") as resp:
                    assert resp.status == 200, await resp.text()
            # A newcomer through the balancer gets the whole document from a node left.
            newcomer = await open_py(f"{balancer.ws}/rooms/{room}?token={token}")
            assert newcomer.file_contents() == files
    finally:
        done.set()
        await store.close()
        await balancer.close()


async def _at_least(value: Callable[[], Awaitable[int]], target: int) -> bool:
    return await value() >= target
