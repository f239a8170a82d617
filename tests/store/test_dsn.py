"""DSN surgery for both shapes: TCP host and Unix socket folder."""

from __future__ import annotations

import pytest

from store import database_of, with_database


def test_tcp_dsn_keeps_user_host_port_and_options() -> None:
    dsn = "postgresql://postgres:pw@127.0.0.1:5432/test?sslmode=disable"
    assert (
        with_database(dsn, "other")
        == "postgresql://postgres:pw@127.0.0.1:5432/other?sslmode=disable"
    )


def test_socket_dsn_keeps_the_socket_folder() -> None:
    dsn = "postgresql://postgres:@/postgres?host=/tmp/x/pgdata"
    moved = with_database(dsn, "opencode_live")
    assert moved == "postgresql://postgres:@/opencode_live?host=/tmp/x/pgdata"
    assert database_of(moved) == "opencode_live"


def test_dsn_without_database_and_odd_names() -> None:
    assert with_database("postgres://h", "a b") == "postgres://h/a%20b"
    with pytest.raises(ValueError, match="not a postgres URL"):
        with_database("mysql://h/db", "x")
