"""Connection-string surgery, kept in one place because DSNs come in two shapes.

A DSN names a TCP host (``postgresql://u@127.0.0.1:5432/db``) or, for the
embedded server, a Unix socket folder in the query string
(``postgresql://u:@/db?host=/path``); tests and the embedded server both need
"the same server, another database" for either shape.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit


def with_database(dsn: str, database: str) -> str:
    """Return ``dsn`` pointing at ``database`` on the same server, same options."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"not a postgres URL: {parts.scheme!r} (expected postgresql://...)")
    return urlunsplit(parts._replace(path="/" + quote(database, safe="")))


def database_of(dsn: str) -> str:
    """The database a DSN names (empty when it names none)."""
    return urlsplit(dsn).path.lstrip("/")
