"""A real Postgres for the store tests, and a fresh database for every test.

The server is the one DATABASE_URL names (CI sets it) or, without it, an
embedded one started for the session. Each test gets its own database,
created and dropped through a maintenance connection, so tests are isolated
from each other and from anyone else using a shared server.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import TypeVar

import asyncpg
import pytest

from store import Store, with_database
from tests.conftest import quote_identifier

T = TypeVar("T")


@pytest.fixture
async def dsn(admin_dsn: str) -> AsyncIterator[str]:
    """A DSN for a brand-new, empty database, dropped after the test."""
    name = f"test_store_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f"CREATE DATABASE {quote_identifier(name)}")
    finally:
        await conn.close()
    try:
        yield with_database(admin_dsn, name)
    finally:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)")
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
