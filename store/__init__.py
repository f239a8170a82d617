"""Postgres for durable rooms: migrations, the connection pool, every query.

``Store`` is the whole interface the rest of the server uses; with no
``DATABASE_URL``, ``EmbeddedPostgres`` provides a server in the data folder and
the same ``Store`` talks to it.
"""

from .dsn import database_of, with_database
from .embedded import EmbeddedPostgres
from .errors import MigrationError, RoomNotFound, StoreError, StoreUnavailable
from .migrate import Migration, apply_migrations, load_migrations
from .records import DemoInfo, Member, RoomInfo, RoomRecord, RoomStanding, Version, VersionInfo
from .store import Store

__all__ = [
    "DemoInfo",
    "EmbeddedPostgres",
    "Member",
    "Migration",
    "MigrationError",
    "RoomInfo",
    "RoomNotFound",
    "RoomRecord",
    "RoomStanding",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Version",
    "VersionInfo",
    "apply_migrations",
    "database_of",
    "load_migrations",
    "with_database",
]
