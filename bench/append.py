"""Ad hoc: rows/s and commit latency of Store.append_updates per batch size.

Benchmark of the durable log (issue 3): prints figures, asserts nothing.
Run: ``python bench/append.py [DSN]`` (default: DATABASE_URL).
It creates a scratch database on that server and drops it afterwards.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid

import asyncpg

from store import Store, with_database

UPDATE = bytes(32)  # about one keystroke's Yjs update
ROWS_PER_SIZE = 20_000
ROOMS = 50


async def measure(
    store: Store, batch_size: int, rooms: int, writers: int
) -> tuple[float, float, float]:
    """Return (rows/s, p50 ms, p99 ms) for ``writers`` tasks committing batches back to back."""
    batches = max(ROWS_PER_SIZE // batch_size // writers, 20)
    latencies: list[float] = []

    async def writer(w: int) -> None:
        for b in range(batches):
            batch = [(f"room-{(w + b + i) % rooms}", UPDATE) for i in range(batch_size)]
            start = time.perf_counter()
            await store.append_updates(batch)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    rows = batches * batch_size * writers
    return rows / elapsed, statistics.median(latencies) * 1000, p99 * 1000


async def main(admin_dsn: str) -> None:
    name = f"measure_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    settings = {key: await admin.fetchval(f"SHOW {key}") for key in ("synchronous_commit", "fsync")}
    try:
        store = await Store.open(with_database(admin_dsn, name), max_size=8)
        try:
            await store.append_updates([("warm-up", UPDATE)] * 10)
            print(f"server settings: {settings}; update size {len(UPDATE)} B")
            print("batch  rooms  writers      rows/s   p50 ms   p99 ms")
            for rooms, writers in ((1, 1), (ROOMS, 1), (ROOMS, 4)):
                for size in (1, 10, 100, 1000):
                    rate, p50, p99 = await measure(store, size, rooms, writers)
                    print(
                        f"{size:5d}  {rooms:5d}  {writers:7d}  {rate:10.0f}  {p50:7.2f}  {p99:7.2f}"
                    )
        finally:
            await store.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    dsn = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("DATABASE_URL", "")
    if not dsn:
        sys.exit("usage: python bench/append.py DSN (or set DATABASE_URL)")
    asyncio.run(main(dsn))
