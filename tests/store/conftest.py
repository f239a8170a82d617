"""A real Postgres for the store tests, and a fresh database for every test.

The server is the one DATABASE_URL names (CI sets it) or, without it, an
embedded one started for the session. Each test gets its own database,
created and dropped through a maintenance connection, so tests are isolated
from each other and from anyone else using a shared server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

import asyncpg
import pytest

from store import EmbeddedPostgres, Store, StoreUnavailable, with_database
from tests.conftest import need

T = TypeVar("T")


def run_in_thread(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a private loop, leaving the test's loop alone."""

    async def main() -> T:
        return await make()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


async def _probe(dsn: str) -> str | None:
    """None if the server answers, else why not."""
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


@pytest.fixture(scope="session")
def admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A DSN on the test server that may create and drop databases."""
    url = os.environ.get("DATABASE_URL")
    if url:
        error = run_in_thread(lambda: _probe(url))
        need(error is None, f"DATABASE_URL is set but the server does not answer: {error}")
        yield url
        return
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("embedded") / "pgdata")
    try:
        dsn = run_in_thread(embedded.start)
    except StoreUnavailable as exc:
        need(False, f"no DATABASE_URL and no embedded Postgres: {exc}")
        raise  # unreachable: need() skipped or failed
    try:
        yield with_database(dsn, "postgres")
    finally:
        run_in_thread(embedded.stop)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@pytest.fixture
async def dsn(admin_dsn: str) -> AsyncIterator[str]:
    """A DSN for a brand-new, empty database, dropped after the test."""
    name = f"test_store_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f"CREATE DATABASE {_quote(name)}")
    finally:
        await conn.close()
    try:
        yield with_database(admin_dsn, name)
    finally:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)")
        finally:
            await conn.close()


@pytest.fixture
async def store(dsn: str) -> AsyncIterator[Store]:
    """A migrated store on the test's own database."""
    opened = await Store.open(dsn)
    try:
        yield opened
    finally:
        await opened.close()
