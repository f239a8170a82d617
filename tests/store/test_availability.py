"""Outages look like StoreUnavailable, whatever broke underneath."""

from __future__ import annotations

import socket

import asyncpg
import pytest

from store import Store, StoreUnavailable


async def test_ping_answers_on_an_open_store(store: Store) -> None:
    await store.ping()


async def test_ping_and_queries_raise_on_a_closed_store(dsn: str) -> None:
    store = await Store.open(dsn)
    await store.close()
    assert store.closed
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.ping()
    with pytest.raises(StoreUnavailable):
        await store.append_updates([("r", b"x")])
    with pytest.raises(StoreUnavailable):
        await store.load_room("r")
    await store.close()  # closing twice is fine


def _refused_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_open_on_an_unreachable_server_raises_store_unavailable() -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{_refused_port()}/none"
    with pytest.raises(StoreUnavailable, match="opening the store"):
        await Store.open(dsn, connect_timeout=5)


async def test_terminated_connections_surface_as_store_unavailable(store: Store, dsn: str) -> None:
    """A server that drops our sessions (as on restart) is an outage, then recovers."""
    await store.append_updates([("r", b"1")])
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'opencode-live' AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    # The pool notices dead connections and reconnects: within a few tries it works again.
    errors = 0
    for _ in range(20):
        try:
            await store.ping()
            break
        except StoreUnavailable:
            errors += 1
    else:
        pytest.fail("store did not recover after its connections were terminated")
    assert errors <= 10  # at most one failure per pooled connection (max_size)
    assert await store.append_updates([("r", b"2")]) == [2]
