"""Schema migrations: plain SQL files applied in order, once, whoever starts first.

Files are ``migrations/NNNN_name.sql``, shipped inside the package. Each runs in
its own transaction together with its row in ``schema_migrations``, so a
migration is either applied and recorded or neither. A session-level advisory
lock makes two processes starting at once take turns: the second finds the
work done. A recorded migration whose file changed since is refused, because
the database would otherwise silently differ from what the code says it is.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

import asyncpg

from .errors import MigrationError

log = logging.getLogger("opencode_live.store")

#: Key of the advisory lock that serialises migration runs across processes.
#: Arbitrary but fixed ("ocl-migr" in ASCII); only the single-bigint lock space uses it.
MIGRATION_LOCK_KEY = 0x6F636C2D6D696772

_FILE_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql\Z")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One SQL file: its number gives the order, its checksum guards against edits."""

    version: int
    name: str
    sql: str

    @property
    def file_name(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"

    @property
    def checksum(self) -> str:
        # Line endings normalised: a checkout with CRLF is the same migration.
        return hashlib.sha256(self.sql.replace("\r\n", "\n").encode()).hexdigest()


def load_migrations(folder: Traversable | None = None) -> list[Migration]:
    """Read the migration files of ``folder`` (default: the package's own), in order."""
    folder = folder if folder is not None else files(__package__) / "migrations"
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            raise MigrationError(
                f"migration file {entry.name!r} is not named NNNN_lowercase_name.sql"
            )
        migration = Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8"))
        if migration.version in found:
            raise MigrationError(
                f"two migrations numbered {migration.version:04d}: "
                f"{found[migration.version].file_name} and {entry.name}"
            )
        found[migration.version] = migration
    return [found[version] for version in sorted(found)]


async def apply_migrations(
    conn: asyncpg.Connection, migrations: Sequence[Migration]
) -> list[Migration]:
    """Bring the database up to date; return the migrations applied by this call."""
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        recorded = {
            row["version"]: (row["name"], row["checksum"])
            for row in await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        }
        _check_recorded(recorded, migrations)
        applied: list[Migration] = []
        for migration in migrations:
            if migration.version in recorded:
                continue
            async with conn.transaction():
                try:
                    await conn.execute(migration.sql)
                except asyncpg.PostgresError as exc:
                    raise MigrationError(f"migration {migration.file_name} failed: {exc}") from exc
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("migration applied", extra={"migration": migration.file_name})
            applied.append(migration)
        return applied
    finally:
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


def _check_recorded(recorded: dict[int, tuple[str, str]], migrations: Sequence[Migration]) -> None:
    """Refuse edited migrations; tolerate newer ones (a rolling deploy's new processes)."""
    known = {migration.version: migration for migration in migrations}
    for version, (name, checksum) in sorted(recorded.items()):
        migration = known.get(version)
        if migration is None:
            log.warning(
                "database has a migration this build does not know",
                extra={"migration": f"{version:04d}_{name}.sql"},
            )
            continue
        if migration.checksum != checksum:
            raise MigrationError(
                f"migration {migration.file_name} was changed after it was applied "
                f"(recorded checksum {checksum[:12]}..., file now {migration.checksum[:12]}...); "
                "never edit an applied migration: restore the file and add a new migration"
            )
