"""Helpers for tests of several server processes sharing rooms through Redis.

Their fixtures (``node_host``, ``session``, ``private_redis``) are in
tests/integration/conftest.py; the Redis prefix (``redis_prefix``) in tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from crdt import RoomDocument
from store import Store
from tests.conftest import ServerProcess, redis_reason
from tests.integration.node_driver import NodeClient, eventually
from tests.pyclient import YClient

EXAMPLES = Path(__file__).resolve().parents[1] / "demos" / "examples"
TEACHER = {"role": "instructor", "user_id": "ines", "name": "Ines"}


Start = Callable[..., ServerProcess]


def start_nodes(
    server_factory: Start, redis_url: str, prefix: str, count: int, *flags: str
) -> list[ServerProcess]:
    env = {"REDIS_URL": redis_url, "OPENCODE_LIVE_BUS_PREFIX": prefix}
    return [server_factory("--unload-grace-seconds", "0.5", *flags, env=env) for _ in range(count)]


@contextlib.asynccontextmanager
async def py_clients() -> AsyncIterator[Callable[[str], Awaitable[YClient]]]:
    """pycrdt clients, each on its own session; all closed at the end."""
    opened: list[tuple[aiohttp.ClientSession, YClient]] = []

    async def open_client(url: str) -> YClient:
        s = aiohttp.ClientSession()
        client = YClient(s, url)
        opened.append((s, client))
        await client.connect()
        await client.wait_synced(15)
        return client

    try:
        yield open_client
    finally:
        for s, client in opened:
            await client.close()
            await s.close()


async def stored_files(dsn: str, room: str) -> dict[str, str]:
    """The room's document as Postgres holds it (snapshot and log)."""
    store = await Store.open(dsn, migrate=False, min_size=1, max_size=1)
    try:
        record = await store.load_room(room)
    finally:
        await store.close()
    doc = RoomDocument()
    for update in record.as_updates():
        doc.apply_update(update)
    return doc.read_files()


async def metric(session: aiohttp.ClientSession, node: ServerProcess, name: str) -> float:
    """The sum of a metric's samples at a node's /metrics."""
    async with session.get(f"{node.http}/metrics") as response:
        text = await response.text()
    total = 0.0
    for line in text.splitlines():
        if re.match(rf"{re.escape(name)}(\{{|\s)", line):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def converged(
    node_clients: list[NodeClient], py: list[YClient], dsn: str, room: str, timeout: float = 30.0
) -> dict[str, str]:
    """Wait until every client holds the same files, equal to the stored document."""
    last: dict[str, Any] = {}

    async def same() -> bool:
        files = [await c.files() for c in node_clients] + [c.file_contents() for c in py]
        last["files"] = files
        if any(f != files[0] for f in files):
            return False
        last["stored"] = await stored_files(dsn, room)
        return last["stored"] == files[0]

    try:
        await eventually(same, timeout=timeout, what="convergence", interval=0.2)
    except AssertionError:
        lengths = [{p: len(t) for p, t in f.items()} for f in last.get("files", [])]
        stored = {p: len(t) for p, t in last.get("stored", {}).items()}
        raise AssertionError(f"no convergence: clients {lengths}, stored {stored}") from None
    return last["files"][0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server of the test's own on a free port, stopped and restarted by its PID."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.dir = tmp_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while redis_reason(self.url) is not None:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("private redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None
