"""Fixtures shared by the integration tests of several nodes (helpers: tests/cluster.py)."""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.cluster import PrivateRedis
from tests.conftest import Tokens, need
from tests.integration.node_driver import NodeClients, node_available


@pytest.fixture
async def node_host(
    tmp_path: Path, tokens: Tokens
) -> AsyncIterator[Callable[[], Awaitable[NodeClients]]]:
    need(node_available(), "Node.js and `npm install` in tests/node are needed for Yjs clients")
    started: list[NodeClients] = []
    counter = itertools.count(1)

    async def start() -> NodeClients:
        host = NodeClients(tmp_path / f"yclient-{next(counter)}.log", token=tokens.token())
        await host.start()
        started.append(host)
        return host

    try:
        yield start
    finally:
        for host in started:
            await host.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        yield s


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    need(
        subprocess.run(["which", "redis-server"], capture_output=True).returncode == 0,
        "redis-server is needed to restart a Redis of the test's own",
    )
    instance = PrivateRedis(tmp_path)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()
