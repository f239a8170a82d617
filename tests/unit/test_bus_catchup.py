"""A room's link to other nodes: gaps noticed, filled from the log, nothing delivered twice.

The room, the bus and the log are small in-memory stand-ins here; the real
ones are exercised by tests/integration/test_cluster.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from rooms.bus import Kind
from rooms.cluster import RoomLink
from store.records import RoomRecord


@dataclass
class FakeAwareness:
    def encode_all(self) -> bytes | None:
        return b"\x01\x00"


@dataclass
class FakeRoom:
    id: str = "r"
    last_seq: int = 0
    delivered: list[bytes] = field(default_factory=list)
    snapshots: list[bytes] = field(default_factory=list)
    awareness: FakeAwareness = field(default_factory=FakeAwareness)

    def deliver_update(self, update: bytes) -> None:
        self.delivered.append(update)

    def deliver_state(self, state: bytes, tail_rows: int) -> None:
        self.snapshots.append(state)

    def deliver_awareness(self, message: bytes) -> None: ...

    def deliver_room(self, message: bytes) -> None: ...


@dataclass
class FakeBus:
    shared = True
    sent: list[tuple[Kind, int, bytes]] = field(default_factory=list)

    def publish(self, room_id: str, kind: Kind, seq: int, body: bytes) -> None:
        self.sent.append((kind, seq, body))


@dataclass
class FakeLog:
    rows: dict[int, bytes] = field(default_factory=dict)
    snapshot: tuple[int, bytes] | None = None
    reads: list[int] = field(default_factory=list)

    async def room_log_after(self, room_id: str, after_seq: int) -> RoomRecord:
        self.reads.append(after_seq)
        if self.snapshot is not None and self.snapshot[0] > after_seq:
            upto, state = self.snapshot
            tail = [(s, u) for s, u in sorted(self.rows.items()) if s > upto]
            return RoomRecord(state, upto, tail)
        tail = [(s, u) for s, u in sorted(self.rows.items()) if s > after_seq]
        return RoomRecord(None, after_seq, tail)


def u(seq: int) -> bytes:
    return f"update-{seq}".encode()


async def wait_for(check, timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def make(start: int, grace: float = 0.02) -> tuple[RoomLink, FakeRoom, FakeBus, FakeLog]:
    room, bus, log = FakeRoom(), FakeBus(), FakeLog()
    link = RoomLink(room, bus, log, grace=grace)  # type: ignore[arg-type]
    link.start(start)
    return link, room, bus, log


async def test_a_reordering_is_waited_out_without_reading_the_log():
    link, room, _bus, log = make(0, grace=0.5)
    link.received(Kind.UPDATE, 2, u(2))
    link.received(Kind.UPDATE, 1, u(1))
    assert room.delivered == [u(1), u(2)] and room.last_seq == 2
    # The gap closed in time: no catch-up is armed or running, so none will read the log.
    assert link.mark is not None and not link.mark.gap
    assert link._timer is None and link._task is None
    assert log.reads == []
    link.close()


async def test_a_lost_message_is_read_from_the_log_and_the_held_one_follows_once():
    link, room, _bus, log = make(0)
    log.rows = {1: u(1), 2: u(2), 3: u(3)}
    link.received(Kind.UPDATE, 3, u(3))  # 1 and 2 were lost
    assert room.delivered == []
    await wait_for(lambda: room.last_seq == 3)
    assert room.delivered == [u(1), u(2), u(3)]
    assert log.reads == [0]
    link.close()


async def test_own_commits_are_published_and_not_delivered_again_by_a_catch_up():
    link, room, bus, log = make(0)
    log.rows = {1: u(1), 2: u(2)}
    link.committed(2, u(2))  # ours, forwarded by the room itself; 1 is someone else's
    assert bus.sent[-1] == (Kind.UPDATE, 2, u(2))
    await wait_for(lambda: room.last_seq == 2)  # the gap before our 2 was read from the log
    assert room.delivered == [u(1)]
    link.received(Kind.UPDATE, 3, u(3))
    assert room.delivered == [u(1), u(3)] and room.last_seq == 3
    link.close()


async def test_a_snapshot_is_used_when_compaction_folded_what_is_missing():
    link, room, _bus, log = make(2)
    log.snapshot = (5, b"state-5")
    log.rows = {6: u(6)}
    link.received(Kind.UPDATE, 7, u(7))
    await wait_for(lambda: room.last_seq == 7)
    assert room.snapshots == [b"state-5"]
    assert room.delivered == [u(6), u(7)]
    link.close()


async def test_a_head_notice_reads_only_what_the_node_lacks():
    link, room, _bus, log = make(4)
    link.expect(4)
    await asyncio.sleep(0.05)
    assert log.reads == []
    log.rows = {5: u(5)}
    link.expect(5)
    await wait_for(lambda: room.last_seq == 5)
    assert room.delivered == [u(5)] and log.reads == [4]
    link.close()


async def test_a_resubscription_asks_for_presence_and_catches_up():
    link, room, bus, log = make(1)
    log.rows = {2: u(2)}
    link.resubscribed(None)
    assert (Kind.QUERY_AWARENESS, 0, b"") in bus.sent
    await wait_for(lambda: room.last_seq == 2)
    # With the log's head known, a room that missed nothing reads nothing.
    reads = len(log.reads)
    link.resubscribed(2)
    await asyncio.sleep(0.05)
    assert len(log.reads) == reads
    link.close()


async def test_messages_before_the_load_are_kept_and_old_ones_dropped():
    room, bus, log = FakeRoom(), FakeBus(), FakeLog()
    link = RoomLink(room, bus, log, grace=0.02)  # type: ignore[arg-type]
    link.received(Kind.UPDATE, 3, u(3))  # already in what the load read
    link.received(Kind.UPDATE, 4, u(4))
    link.start(3)
    assert room.delivered == [u(4)] and room.last_seq == 4
    link.close()


async def test_a_failed_read_is_retried():
    link, room, _bus, log = make(0)
    failures = [RuntimeError("database away")]
    real = log.room_log_after

    async def flaky(room_id: str, after_seq: int) -> RoomRecord:
        if failures:
            raise failures.pop()
        return await real(room_id, after_seq)

    log.room_log_after = flaky  # type: ignore[method-assign]
    log.rows = {1: u(1), 2: u(2)}
    link.received(Kind.UPDATE, 2, u(2))
    await wait_for(lambda: room.last_seq == 2, timeout=5)
    assert room.delivered == [u(1), u(2)]
    link.close()
