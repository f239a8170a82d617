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
async def session():
    async with aiohttp.ClientSession() as s:
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
