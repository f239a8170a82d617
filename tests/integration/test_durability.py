"""Durable rooms through the real server process and the real Postgres."""

from __future__ import annotations

import asyncio
import random
import re

import aiohttp
import pytest
from pycrdt import Decoder, Text

from tests.integration.test_ws_protocol import connected, server_files
from tests.pyclient import YClient, eventually


def state_vector(doc_state: bytes) -> dict[int, int]:
    decoder = Decoder(doc_state)
    return {
        decoder.read_var_uint(): decoder.read_var_uint() for _ in range(decoder.read_var_uint())
    }


@pytest.fixture
async def session(tokens):
    """Signed in as one student, who owns the rooms the test opens."""
    async with aiohttp.ClientSession(headers=tokens.auth()) as s:
        yield s


async def test_content_survives_a_restart(server_factory, session):
    first = server_factory()
    writer = await connected(session, first, "keep")
    writer.edit(lambda f: f.__setitem__("main.py", Text("print('kept')\n")))
    async with session.put(f"{first.http}/api/rooms/keep/files/notes.md", data="# José\n") as r:
        assert r.status == 201
    await server_files(session, first, "keep", until=lambda f: len(f) == 2)
    await writer.close()
    assert first.stop() == 0
    second = server_factory()
    reader = await connected(session, second, "keep")
    assert reader.file_contents() == {"main.py": "print('kept')\n", "notes.md": "# José\n"}
    async with session.get(f"{second.http}/readyz") as r:
        body = await r.json()
        assert r.status == 200 and body["checks"]["database"] == "ok"
    await reader.close()


async def test_kill_9_loses_nothing_any_other_client_received(server_factory, session):
    first = server_factory()
    writers = [await connected(session, first, "crash") for _ in range(3)]
    watcher = await connected(session, first, "crash")
    rng = random.Random(7)
    stop = asyncio.Event()

    async def type_into(client: YClient, name: str) -> None:
        client.edit(lambda f: f.__setitem__(name, Text("")))
        for i in range(2000):
            if stop.is_set() or client.closed.is_set():
                return
            client.edit(lambda f, i=i: f[name].insert(len(str(f[name])), f"{i},"))
            await asyncio.sleep(rng.random() / 200)

    tasks = [asyncio.create_task(type_into(w, f"w{i}.txt")) for i, w in enumerate(writers)]
    # let the stream run, then kill the server in the middle of it
    await eventually(lambda: sum(len(watcher.text(f"w{i}.txt") or "") for i in range(3)) > 600)
    first.process.kill()
    first.process.wait(10)
    stop.set()
    await asyncio.gather(*tasks)
    seen = state_vector(watcher.doc.get_state())  # everything the watcher was sent
    seen.pop(watcher.client_id, None)
    assert seen and all(clock > 0 for clock in seen.values())

    second = server_factory()
    fresh = await connected(session, second, "crash")
    stored = state_vector(fresh.doc.get_state())
    for client_id, clock in seen.items():
        assert stored.get(client_id, 0) >= clock, "an update another client had seen was lost"
    # the writers reconnect and sync what the server never stored: all converge
    for w in writers:
        await w.close()
    rejoined = []
    for w in writers:
        again = YClient(session, f"{second.ws}/rooms/crash")
        again.doc.apply_update(w.doc.get_update())
        rejoined.append(await again.connect())
    for r in rejoined:
        await r.wait_synced()
    # each writer holds the whole of its own file (the others' copies may lag)
    expected = {f"w{i}.txt": w.text(f"w{i}.txt") for i, w in enumerate(writers)}
    await eventually(lambda: fresh.file_contents() == expected, timeout=15, what="convergence")
    final = await server_files(session, second, "crash", until=lambda f: f == expected)
    assert final == expected
    # after the resync every copy holds exactly the same document
    await eventually(
        lambda: all(
            state_vector(r.doc.get_state()) == state_vector(fresh.doc.get_state()) for r in rejoined
        ),
        what="identical state vectors",
    )
    for c in (*rejoined, fresh, watcher):
        await c.close()


async def test_compaction_under_writes_loses_nothing(server_factory, session):
    server = server_factory("--compact-after-updates", "25")
    clients = [await connected(session, server, "fold") for _ in range(2)]
    expected: dict[str, str] = {}
    for round_ in range(6):  # rounds, so that several compactions run while others write
        for n in range(30):
            for i, c in enumerate(clients):
                path, text = f"c{i}/{n % 7}.txt", f"{round_}:{n}"
                c.edit(lambda f, path=path, text=text: f.__setitem__(path, Text(text)))
                expected[path] = text
        await server_files(session, server, "fold", until=lambda f: f == expected, timeout=20)
    async with session.get(f"{server.http}/metrics") as r:
        text = await r.text()
    compactions = float(re.search(r"^opencode_live_compactions_total (\S+)$", text, re.M)[1])
    assert compactions >= 3
    for c in clients:
        await c.close()
    assert server.stop() == 0
    again = server_factory()
    reader = await connected(session, again, "fold")
    assert reader.file_contents() == expected
    await reader.close()


async def test_versions_save_list_show_and_restore_as_a_new_change(server, session):
    client = await connected(session, server, "ver")
    base = f"{server.http}/api/rooms/ver"
    client.edit(lambda f: f.__setitem__("main.py", Text("v1\n")))
    client.edit(lambda f: f.__setitem__("util.py", Text("u\n")))
    await server_files(session, server, "ver", until=lambda f: len(f) == 2)
    async with session.post(f"{base}/versions", json={"name": "first draft"}) as r:
        assert r.status == 201
        first = await r.json()
    assert first["name"] == "first draft"
    client.edit(lambda f: f["main.py"].__iadd__("v2\n"))
    client.edit(lambda f: f.pop("util.py"))
    client.edit(lambda f: f.__setitem__("new.py", Text("n\n")))
    await server_files(session, server, "ver", until=lambda f: "new.py" in f)
    async with session.post(f"{base}/versions", json={"name": "second"}) as r:
        second = await r.json()
    async with session.get(f"{base}/versions") as r:
        listed = (await r.json())["versions"]
    assert [v["name"] for v in listed] == ["second", "first draft"]
    async with session.get(f"{base}/versions/{first['id']}/files") as r:
        assert (await r.json())["files"] == {"main.py": "v1\n", "util.py": "u\n"}
    before = state_vector(client.doc.get_state())
    async with session.post(f"{base}/versions/{first['id']}/restore") as r:
        assert r.status == 200 and (await r.json())["changed"] is True
    await eventually(
        lambda: client.file_contents() == {"main.py": "v1\n", "util.py": "u\n"}, what="restore"
    )
    after = state_vector(client.doc.get_state())
    assert all(after.get(c, 0) >= clock for c, clock in before.items())  # nothing rewritten
    assert after != before  # the restore is a new change
    async with session.get(f"{base}/versions/{second['id']}/files") as r:
        assert (await r.json())["files"] == {"main.py": "v1\nv2\n", "new.py": "n\n"}
    await client.close()


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("post", "/versions", {"name": ""}, 400, "name of 1 to 200"),
        ("post", "/versions", {"nom": "x"}, 400, "name of 1 to 200"),
        ("post", "/versions", "not json", 400, "must be JSON"),
        ("get", "/versions/999/files", None, 404, "no version 999"),
        ("post", "/versions/abc/restore", None, 404, "no version 'abc'"),
    ],
)
async def test_versions_bad_requests(server, session, method, path, body, status, message):
    async with session.post(f"{server.http}/api/rooms", json={"id": "ver"}) as r:
        assert r.status == 201  # the API no longer creates rooms: this one exists, empty
    kwargs = {"json": body} if isinstance(body, dict) else {"data": body} if body else {}
    async with session.request(method, f"{server.http}/api/rooms/ver{path}", **kwargs) as r:
        assert r.status == status
        assert message in (await r.json())["error"]


async def test_postgres_outage_holds_updates_then_stores_and_forwards_them(
    server_factory, session, tmp_path
):
    """On a Postgres this test starts and stops itself, never the machine's."""
    from store import EmbeddedPostgres

    embedded = EmbeddedPostgres(tmp_path / "pg")
    dsn = await embedded.start()
    try:
        server = server_factory(env={"DATABASE_URL": dsn})
        author = await connected(session, server, "outage?ext=1")
        other = await connected(session, server, "outage")
        author.edit(lambda f: f.__setitem__("a.py", Text("before\n")))
        await eventually(lambda: other.text("a.py") == "before\n", what="normal forwarding")

        await embedded.stop()
        author.edit(lambda f: f["a.py"].__iadd__("during\n"))
        await eventually(
            lambda: any(m.get("code") == "not-saved" for m in author.room_messages),
            timeout=15,
            what="author told changes are not saved",
        )
        assert other.text("a.py") == "before\n"  # not durable, so not forwarded
        async with session.get(f"{server.http}/readyz") as r:
            assert r.status == 503
            assert "unavailable" in (await r.json())["checks"]["database"]
        async with session.get(f"{server.http}/healthz") as r:
            assert r.status == 200  # the process lives on

        assert await embedded.start() == dsn
        await eventually(
            lambda: other.text("a.py") == "before\nduring\n", timeout=20, what="resumed"
        )
        assert any(m.get("code") == "saved" for m in author.room_messages)
        async with session.get(f"{server.http}/readyz") as r:
            assert r.status == 200
        for c in (author, other):
            await c.close()
        assert server.stop() == 0
        again = server_factory(env={"DATABASE_URL": dsn})
        reader = await connected(session, again, "outage")
        assert reader.text("a.py") == "before\nduring\n"
        await reader.close()
        again.stop()
    finally:
        await embedded.stop()


async def test_room_with_unstored_updates_is_not_unloaded(server_factory, session, tmp_path):
    """The last client leaves during an outage: the room waits for its updates to be stored."""
    from store import EmbeddedPostgres

    embedded = EmbeddedPostgres(tmp_path / "pg")
    dsn = await embedded.start()
    try:
        server = server_factory("--unload-grace-seconds", "0.1", env={"DATABASE_URL": dsn})
        author = await connected(session, server, "linger")
        await embedded.stop()
        author.edit(lambda f: f.__setitem__("a.py", Text("typed while down\n")))
        await author.close()

        async def loaded() -> bool:
            # /api/rooms reads the database, down here: the process's own gauge of the
            # rooms it holds in memory (this server's only room is "linger") says it
            async with session.get(f"{server.http}/metrics") as r:
                text = await r.text()
            return float(re.search(r"^opencode_live_rooms (\S+)$", text, re.M)[1]) == 1

        for _ in range(20):  # well past the grace period, the room is still held
            assert await loaded()
            await asyncio.sleep(0.05)
        await embedded.start()
        await eventually_async(lambda: _not(loaded()), timeout=20, what="unload once stored")
        async with session.get(f"{server.http}/api/rooms") as r:
            assert [(x["id"], x["loaded"]) for x in (await r.json())["rooms"]] == [
                ("linger", False)
            ]
        reader = await connected(session, server, "linger")
        assert reader.text("a.py") == "typed while down\n"
        await reader.close()
    finally:
        await embedded.stop()


async def _not(value) -> bool:  # type: ignore[no-untyped-def]
    return not await value


async def eventually_async(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)
