"""Many clients joining a room that is still loading: all are synced, none waits forever.

The server runs in this process (behind the real front door on a loopback
socket) on the real Postgres, through a Store whose room load waits for the
test's signal, so the test controls how long the room is "still loading".
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web
from pycrdt import Doc, Map, Text

from rooms import CloseCode
from server import Settings, create_app
from server.app import start_site
from server.tokens import TokenVerifier
from store import RoomRecord, Store
from tests.pyclient import YClient

JOINERS = 100
SECRET = "join-burst-test-secret-" + "x" * 32
#: The users-table id of the student ``signed_in`` speaks for (sub "tester").
TESTER = uuid.uuid5(uuid.NAMESPACE_URL, "opencode-live:user:tester")


def settings(**kw: Any) -> Settings:
    """Settings of an app that accepts the tokens ``signed_in`` mints."""
    return Settings(auth_secret=SECRET, **kw)


def signed_in() -> dict[str, str]:
    """Headers of one student, who owns the rooms the test opens."""
    verifier = TokenVerifier(secret=SECRET, issuer="opencode-live", audience="opencode-live")
    token = verifier.mint(name="Tester", role="student", user_id="tester")
    assert verifier.verify(token).user_uuid == TESTER
    return {"Authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[int]:
    """The app behind the real front door on a free loopback port, in this process."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    listener = await start_site(runner, "127.0.0.1", 0)
    try:
        yield listener.sockets[0].getsockname()[1]
    finally:
        listener.close()
        await runner.cleanup()


class GatedStore(Store):
    """The real store; ``load_room`` first waits for ``release`` (or fails once)."""

    release: asyncio.Event
    loads: int = 0
    fail_first: bool = False

    async def load_room(self, room_id: str) -> RoomRecord:
        self.loads += 1
        self.started.set()
        await asyncio.wait_for(self.release.wait(), 10)
        if self.fail_first and self.loads == 1:
            raise ConnectionError("database went away")
        return await super().load_room(room_id)


async def gated_store(dsn: str) -> GatedStore:
    store = await GatedStore.open(dsn)
    assert isinstance(store, GatedStore)
    store.release = asyncio.Event()
    store.started = asyncio.Event()  # type: ignore[attr-defined]
    return store


def stored_room() -> list[bytes]:
    doc = Doc()
    files = doc.get("files", type=Map)
    updates = []
    for i in range(50):
        sv = doc.get_state()
        files[f"lesson/{i}.py"] = Text(f"print({i})\n" * 20)
        updates.append(doc.get_update(sv))
    return updates


async def test_burst_of_joiners_while_room_loads_all_get_synced(database_url, tmp_path):
    updates = stored_room()
    expected = Doc()
    for u in updates:
        expected.apply_update(u)
    expected_files = {k: str(v) for k, v in expected.get("files", type=Map).items()}
    store = await gated_store(database_url)
    # a room of the tester's with stored content (appending alone would make one nobody owns)
    await store.upsert_user(TESTER, "tester", "Tester", "student")
    assert await store.create_room("burst", TESTER) is not None
    await store.append_updates([("burst", u) for u in updates])
    app = await create_app(settings(unload_grace_seconds=0.2, data_dir=str(tmp_path)), store=store)
    try:
        async with serving(app) as port, aiohttp.ClientSession(headers=signed_in()) as session:
            url = f"ws://127.0.0.1:{port}/rooms/burst"
            clients = [YClient(session, url) for _ in range(JOINERS)]
            await asyncio.gather(*(c.connect() for c in clients))
            await asyncio.wait_for(store.started.wait(), 5)  # type: ignore[attr-defined]
            assert not any(c.synced.is_set() for c in clients)  # all waiting on the load
            store.release.set()
            results = await asyncio.gather(
                *(c.wait_synced(15) for c in clients), return_exceptions=True
            )
            failures = [r for r in results if isinstance(r, BaseException)]
            assert failures == [], f"{len(failures)} of {JOINERS} joiners never synced"
            assert store.loads == 1  # one load shared by every joiner
            for c in clients:
                assert c.file_contents() == expected_files
            await asyncio.gather(*(c.close() for c in clients))
    finally:
        await store.close()


async def test_failed_load_tells_every_waiting_joiner_and_next_join_retries(database_url, tmp_path):
    store = await gated_store(database_url)
    store.fail_first = True
    app = await create_app(settings(data_dir=str(tmp_path)), store=store)
    try:
        async with serving(app) as port, aiohttp.ClientSession(headers=signed_in()) as session:
            url = f"ws://127.0.0.1:{port}/rooms/flaky"
            clients = [YClient(session, url) for _ in range(10)]
            await asyncio.gather(*(c.connect() for c in clients))
            await asyncio.wait_for(store.started.wait(), 5)  # type: ignore[attr-defined]
            store.release.set()
            codes = await asyncio.gather(*(c.wait_closed(10) for c in clients))
            assert set(codes) == {CloseCode.INTERNAL_ERROR}
            assert {c.close_reason for c in clients} == {"room could not be loaded"}
            again = await YClient(session, url).connect()
            await again.wait_synced(10)
            assert store.loads == 2
            await again.close()
    finally:
        await store.close()
