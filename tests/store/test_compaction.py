"""Compaction: snapshot + tail always rebuilds the document, whatever races it."""

from __future__ import annotations

import asyncio

import pytest

from store import RoomNotFound, Store

from .ydocs import Writer, files_of, rebuild, state_vector


async def _compact_from_database(store: Store, room: str) -> tuple[bool, int]:
    """What the server's compactor does: rebuild from the store, fold, write back."""
    record = await store.load_room(room)
    doc = rebuild(record.as_updates())
    return await store.compact(room, record.last_seq, doc.get_update()), record.last_seq


async def test_compaction_replaces_the_log_with_a_snapshot(store: Store) -> None:
    writer = Writer("main.py")
    updates = [writer.edit() for _ in range(10)]
    await store.append_updates([("r", u) for u in updates])
    assert await store.log_size("r") == (10, sum(map(len, updates)))

    assert await _compact_from_database(store, "r") == (True, 10)
    assert await store.log_size("r") == (0, 0)
    record = await store.load_room("r")
    assert record.snapshot_seq == 10 and record.updates == [] and record.last_seq == 10

    more = [writer.edit() for _ in range(3)]
    assert await store.append_updates([("r", u) for u in more]) == [11, 12, 13]
    record = await store.load_room("r")
    assert [seq for seq, _ in record.updates] == [11, 12, 13]
    assert await store.log_size("r") == (3, sum(map(len, more)))
    assert files_of(rebuild(record.as_updates())) == files_of(writer.doc)


async def test_stale_compaction_is_a_no_op(store: Store) -> None:
    writer = Writer("f")
    updates = [writer.edit() for _ in range(10)]
    await store.append_updates([("r", u) for u in updates])
    newer = rebuild(updates[:8]).get_update()
    assert await store.compact("r", 8, newer)
    older = rebuild(updates[:5]).get_update()
    assert not await store.compact("r", 5, older)
    assert not await store.compact("r", 8, b"a different state for the same point")
    record = await store.load_room("r")
    assert (record.snapshot, record.snapshot_seq) == (newer, 8)
    assert [seq for seq, _ in record.updates] == [9, 10]
    assert files_of(rebuild(record.as_updates())) == files_of(writer.doc)


async def test_compaction_cannot_pass_the_log_or_invent_rooms(store: Store) -> None:
    await store.append_updates([("r", b"x")])
    with pytest.raises(ValueError, match="its log ends at 1"):
        await store.compact("r", 2, b"")
    with pytest.raises(ValueError, match=">= 0"):
        await store.compact("r", -1, b"")
    with pytest.raises(RoomNotFound):
        await store.compact("ghost", 0, b"")


async def test_compaction_under_concurrent_appends_loses_nothing(store: Store, dsn: str) -> None:
    """Writers on two pools append while a third compacts repeatedly; nothing may vanish."""
    room = "busy"
    other = await Store.open(dsn)
    compactor = await Store.open(dsn, max_size=2)
    writers = [Writer(f"file{n}.py") for n in range(6)]
    every_update: list[bytes] = []
    appended = 0
    progress = asyncio.Condition()
    compactions_done = asyncio.Event()
    min_edits, max_edits, compactions_wanted = 30, 2000, 6

    async def write(n: int) -> None:
        nonlocal appended
        writer = writers[n]
        target = store if n % 2 else other
        # Keep typing until the compactor is done, so that every compaction races appends.
        for i in range(max_edits):
            if i >= min_edits and compactions_done.is_set():
                return
            batch = [(room, writer.edit()) for _ in range(1 + i % 3)]
            await target.append_updates(batch)
            every_update.extend(update for _, update in batch)
            async with progress:
                appended += len(batch)
                progress.notify_all()

    async def compact() -> list[int]:
        folded: list[int] = []
        try:
            for k in range(compactions_wanted):
                async with progress:
                    await progress.wait_for(lambda k=k: appended >= 40 * (k + 1))
                stored, upto = await _compact_from_database(compactor, room)
                assert stored
                folded.append(upto)
        finally:
            compactions_done.set()
        return folded

    try:
        async with asyncio.timeout(120):
            *_, folded = await asyncio.gather(*(write(n) for n in range(len(writers))), compact())
    finally:
        await other.close()
        await compactor.close()

    assert len(folded) == compactions_wanted and folded == sorted(folded)
    record = await store.load_room(room)
    assert record.snapshot_seq == folded[-1]
    assert record.last_seq == len(every_update)
    assert [seq for seq, _ in record.updates] == list(range(folded[-1] + 1, len(every_update) + 1))
    rebuilt = rebuild(record.as_updates())
    expected = rebuild(every_update)
    assert (
        files_of(rebuilt) == files_of(expected) == {w.path: str(w.files[w.path]) for w in writers}
    )
    assert state_vector(rebuilt) == state_vector(expected)


async def test_concurrent_compactions_of_one_room_leave_one_consistent_snapshot(
    store: Store, dsn: str
) -> None:
    writer = Writer("f")
    updates = [writer.edit() for _ in range(50)]
    await store.append_updates([("r", u) for u in updates])
    other = await Store.open(dsn)
    try:
        results = await asyncio.gather(
            *(
                (store if n % 2 else other).compact("r", upto, rebuild(updates[:upto]).get_update())
                for n, upto in enumerate([10, 50, 20, 40, 30, 50])
            )
        )
    finally:
        await other.close()
    assert results[1] or results[5]
    record = await store.load_room("r")
    assert record.snapshot_seq == 50 and record.updates == []
    assert files_of(rebuild(record.as_updates())) == files_of(writer.doc)
