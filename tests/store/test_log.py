"""The update log: group-commit appends, loads, and gap-free sequences under concurrency."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict

import asyncpg
import pytest

from store import RoomRecord, Store

from .ydocs import Writer, files_of, rebuild


async def test_append_and_load_round_trip_real_yjs_updates(store: Store) -> None:
    writers = [Writer("a.py"), Writer("b.py")]
    sent: list[bytes] = []
    for batch_size in (1, 3, 7, 1, 12):
        batch = [("room-1", writers[i % 2].edit()) for i in range(batch_size)]
        seqs = await store.append_updates(batch)
        assert seqs == list(range(len(sent) + 1, len(sent) + batch_size + 1))
        sent += [update for _, update in batch]

    record = await store.load_room("room-1")
    assert record.snapshot is None and record.snapshot_seq == 0
    assert record.updates == list(enumerate(sent, start=1))
    assert record.last_seq == len(sent)
    assert files_of(rebuild(record.as_updates())) == {
        "a.py": "".join(f"{i}," for i in range(writers[0].count)),
        "b.py": "".join(f"{i}," for i in range(writers[1].count)),
    }


async def test_one_batch_spans_many_rooms_in_batch_order(store: Store) -> None:
    assert await store.append_updates([("b", b"b1"), ("a", b"a1")]) == [1, 1]
    batch = [("b", b"b2"), ("c", b"c1"), ("a", b"a2"), ("b", b"b3"), ("c", b"c2")]
    assert await store.append_updates(batch) == [2, 1, 2, 3, 2]
    assert (await store.load_room("a")).updates == [(1, b"a1"), (2, b"a2")]
    assert (await store.load_room("b")).updates == [(1, b"b1"), (2, b"b2"), (3, b"b3")]
    assert (await store.load_room("c")).updates == [(1, b"c1"), (2, b"c2")]
    assert await store.append_updates([]) == []


async def test_authors_are_stored_beside_their_updates(store: Store, dsn: str) -> None:
    ann = uuid.uuid4()
    await store.append_updates([("r", b"1"), ("r", b"2")], authors=[ann, None])
    with pytest.raises(ValueError, match="1 authors for 2 updates"):
        await store.append_updates([("r", b"3"), ("r", b"4")], authors=[ann])
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT seq, author FROM room_updates ORDER BY seq")
    finally:
        await conn.close()
    assert [(r["seq"], r["author"]) for r in rows] == [(1, ann), (2, None)]


async def test_unknown_room_loads_empty_and_does_not_exist(store: Store) -> None:
    assert await store.load_room("nobody-here") == RoomRecord(None, 0, [])
    assert not await store.room_exists("nobody-here")
    assert await store.log_size("nobody-here") == (0, 0)
    await store.append_updates([("somebody", b"x")])
    assert await store.room_exists("somebody")


async def test_binary_updates_come_back_byte_for_byte(store: Store) -> None:
    payloads = [bytes(range(256)), b"\x00" * 10, random.Random(7).randbytes(300_000)]
    await store.append_updates([("bin", p) for p in payloads])
    assert [u for _, u in (await store.load_room("bin")).updates] == payloads


async def _hammer(
    stores: list[Store], rooms: list[str], tasks: int, rounds: int, seed: int
) -> dict[str, dict[int, bytes]]:
    """Many tasks append small random batches; returns room -> seq -> bytes as acknowledged."""
    acknowledged: dict[str, dict[int, bytes]] = defaultdict(dict)

    async def worker(n: int) -> None:
        rng = random.Random(seed + n)
        store = stores[n % len(stores)]
        for r in range(rounds):
            batch = [
                (rng.choice(rooms), f"task{n}-round{r}-item{i}".encode())
                for i in range(rng.randint(1, 6))
            ]
            for (room, update), seq in zip(batch, await store.append_updates(batch), strict=True):
                assert seq not in acknowledged[room], f"{room} seq {seq} given twice"
                acknowledged[room][seq] = update

    await asyncio.gather(*(worker(n) for n in range(tasks)))
    return acknowledged


async def _assert_gap_free_and_stored(
    store: Store, acknowledged: dict[str, dict[int, bytes]]
) -> None:
    for room, by_seq in acknowledged.items():
        assert sorted(by_seq) == list(range(1, len(by_seq) + 1)), f"{room} has gaps"
        assert (await store.load_room(room)).updates == sorted(by_seq.items())


async def test_concurrent_appends_from_many_tasks_get_gap_free_sequences(store: Store) -> None:
    acknowledged = await _hammer([store], ["hot", "warm", "cold"], tasks=24, rounds=15, seed=1)
    await _assert_gap_free_and_stored(store, acknowledged)


async def test_two_processes_appending_to_the_same_rooms_never_collide(
    store: Store, dsn: str
) -> None:
    # A second pool is what a second server process would have: its own connections.
    other = await Store.open(dsn, max_size=5)
    try:
        acknowledged = await _hammer(
            [store, other], ["shared", "also"], tasks=20, rounds=15, seed=2
        )
    finally:
        await other.close()
    await _assert_gap_free_and_stored(store, acknowledged)


async def test_new_room_created_by_two_processes_at_once(store: Store, dsn: str) -> None:
    other = await Store.open(dsn)
    try:
        for attempt in range(10):
            room = f"fresh-{attempt}"
            seqs = await asyncio.gather(
                store.append_updates([(room, b"a"), (room, b"b")]),
                other.append_updates([(room, b"c")]),
            )
            assert sorted(seqs[0] + seqs[1]) == [1, 2, 3]
            assert seqs[0][1] == seqs[0][0] + 1
    finally:
        await other.close()


async def test_batches_locking_rooms_in_opposite_orders_do_not_deadlock(
    store: Store, dsn: str
) -> None:
    other = await Store.open(dsn)
    try:
        forward = [(f"r{i}", b"f") for i in range(20)]
        backward = list(reversed([(f"r{i}", b"b") for i in range(20)]))
        results = await asyncio.gather(
            *(
                (store if n % 2 else other).append_updates(forward if n % 2 else backward)
                for n in range(30)
            )
        )
    finally:
        await other.close()
    assert len(results) == 30
    for i in range(20):
        assert (await store.load_room(f"r{i}")).last_seq == 30
