"""Migrations: applied in order and recorded, idempotent, race-safe, edits refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from store import MigrationError, Store, apply_migrations, load_migrations

EXPECTED_TABLES = {
    "schema_migrations",
    "users",
    "rooms",
    "room_updates",
    "room_snapshots",
    "room_versions",
}


async def _recorded(dsn: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(
            "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version"
        )
    finally:
        await conn.close()


def test_package_ships_numbered_migrations() -> None:
    migrations = load_migrations()
    assert migrations[0].file_name == "0001_initial.sql"
    assert [m.version for m in migrations] == sorted({m.version for m in migrations})


def test_badly_named_or_duplicate_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "notes.txt").write_text("ignored")
    assert [m.file_name for m in load_migrations(tmp_path)] == ["0001_a.sql"]
    (tmp_path / "0001_b.sql").write_text("SELECT 2;")
    with pytest.raises(MigrationError, match="two migrations numbered 0001"):
        load_migrations(tmp_path)
    (tmp_path / "0001_b.sql").unlink()
    (tmp_path / "2-Oops.sql").write_text("SELECT 3;")
    with pytest.raises(MigrationError, match=r"2-Oops\.sql"):
        load_migrations(tmp_path)


async def test_open_applies_and_records_every_migration(dsn: str) -> None:
    store = await Store.open(dsn)
    await store.close()
    rows = await _recorded(dsn)
    migrations = load_migrations()
    assert [(r["version"], r["name"], r["checksum"]) for r in rows] == [
        (m.version, m.name, m.checksum) for m in migrations
    ]
    conn = await asyncpg.connect(dsn)
    try:
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        # gen_random_uuid() and the role check work as the later progress tables expect.
        user_id = await conn.fetchval(
            "INSERT INTO users (email, username, role) VALUES ('a@b.c', 'ann', 'instructor') "
            "RETURNING id"
        )
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO users (email, username, role) VALUES ('x@y.z', 'x', 'wizard')"
            )
    finally:
        await conn.close()
    assert EXPECTED_TABLES <= tables
    assert user_id is not None


async def test_running_twice_is_a_no_op(dsn: str) -> None:
    await (await Store.open(dsn)).close()
    first = await _recorded(dsn)
    await (await Store.open(dsn)).close()
    assert await _recorded(dsn) == first
    conn = await asyncpg.connect(dsn)
    try:
        assert await apply_migrations(conn, load_migrations()) == []
    finally:
        await conn.close()


async def test_two_processes_starting_at_once_apply_each_migration_once(dsn: str) -> None:
    # Two stores = two independent connections racing, as two server processes would.
    stores = await asyncio.gather(*(Store.open(dsn) for _ in range(4)))
    try:
        for store in stores:
            await store.ping()
    finally:
        for store in stores:
            await store.close()
    rows = await _recorded(dsn)
    assert [r["version"] for r in rows] == [m.version for m in load_migrations()]


async def test_changed_checksum_is_refused_with_a_clear_message(dsn: str) -> None:
    await (await Store.open(dsn)).close()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    finally:
        await conn.close()
    with pytest.raises(MigrationError, match=r"0001_initial\.sql was changed after it was applied"):
        await Store.open(dsn)


async def test_edited_file_is_refused_and_nothing_runs(dsn: str) -> None:
    await (await Store.open(dsn)).close()
    original = load_migrations()
    edited = [
        type(m)(m.version, m.name, m.sql + "\nCREATE TABLE sneaky (id int);") for m in original
    ]
    conn = await asyncpg.connect(dsn)
    try:
        with pytest.raises(MigrationError, match="never edit an applied migration"):
            await apply_migrations(conn, edited)
        assert await conn.fetchval("SELECT to_regclass('sneaky')") is None
        # the lock was released: the correct set still runs (as a no-op)
        assert await apply_migrations(conn, original) == []
    finally:
        await conn.close()


async def test_a_failing_migration_is_rolled_back_and_not_recorded(dsn: str) -> None:
    await (await Store.open(dsn)).close()
    broken = [
        *load_migrations(),
        type(load_migrations()[0])(9999, "broken", "CREATE TABLE half (id int); SELECT 1/0;"),
    ]
    conn = await asyncpg.connect(dsn)
    try:
        with pytest.raises(MigrationError, match=r"9999_broken\.sql failed"):
            await apply_migrations(conn, broken)
        assert await conn.fetchval("SELECT to_regclass('half')") is None
        assert (
            await conn.fetchval("SELECT count(*) FROM schema_migrations WHERE version = 9999") == 0
        )
    finally:
        await conn.close()
