"""A loaded room's link to the same room on other nodes: gap-free, whatever the bus drops.

Why the log and not the bus decides what a node has: the bus (Redis pub/sub)
may lose messages on a dropped subscription or a Redis restart, and messages
of different nodes may arrive out of commit order. Every update carries its
``seq`` from the room's durable log, which is gap-free and in commit order, so
a node knows exactly which updates it holds (``Watermark``). An update past a
gap is held back for ``grace`` seconds, which is what a reordering takes;
after that, or at once after a resubscription, the node reads what it misses
from Postgres (the log after its watermark, or the latest snapshot and the log
after it when compaction folded the rows it needs) and then releases what it
held, in order, skipping what it applied already. Own commits are applied and
forwarded at once (they never wait for others'), and ``room.last_seq`` is the
contiguous watermark: the document holds every update up to it, which is what
compaction and named versions rely on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Protocol

from crdt import awareness_message

from . import metrics
from .bus import Bus, BusUnavailable, Kind
from .shareddemo import SharedDemo
from .watermark import Watermark

if TYPE_CHECKING:
    from .room import Room

log = logging.getLogger("opencode_live.rooms")

#: Messages kept for a room that is still loading; past it, the load is followed by a catch-up.
MAX_EARLY = 10_000
#: Updates held back past a gap at most; beyond, they are dropped and read from the log.
MAX_HELD = 10_000
#: Catch-ups run back to back at most this often before waiting for the next trigger.
MAX_ROUNDS = 10
#: Seconds before a catch-up that failed (the database away) is tried again.
RETRY_SECONDS = 1.0


class LogTail(Protocol):
    """A room's log after a seq, as the store returns it (``store.RoomRecord``):
    ``snapshot`` is set (with ``snapshot_seq``) only when compaction folded rows
    that were asked for; ``updates`` are ``(seq, update)`` in order."""

    @property
    def snapshot(self) -> bytes | None: ...

    @property
    def snapshot_seq(self) -> int: ...

    @property
    def updates(self) -> list[tuple[int, bytes]]: ...


class UpdateSource(Protocol):
    """What a link needs of the store (``store.Store`` provides it)."""

    def room_log_after(self, room_id: str, after_seq: int) -> Awaitable[LogTail]: ...


class RoomLink:
    def __init__(self, room: Room, bus: Bus, source: UpdateSource, grace: float = 0.25) -> None:
        self.room = room
        self.bus = bus
        self.source = source
        self.grace = grace
        self.mark: Watermark[bytes] | None = None
        self._early: list[tuple[Kind, int, bytes]] = []
        self._resync = False
        self._timer: asyncio.TimerHandle | None = None
        #: The timer waits out a gap (not a retry of a failed catch-up, which stands).
        self._timer_for_gap = False
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self.closed = False
        #: The room's demo, shared with the other nodes through a versioned record.
        self.demo = SharedDemo(room, bus)

    # -- life cycle (the registry) ---------------------------------------------

    def start(self, seq: int) -> None:
        """The room was loaded up to ``seq``: deliver what came meanwhile, past it."""
        self.mark = Watermark(seq)
        self.room.last_seq = seq
        early, self._early = self._early, []
        for kind, message_seq, body in early:
            self.received(kind, message_seq, body)
        # Presence is not in the log: the nodes already holding the room tell theirs.
        self.publish(Kind.QUERY_AWARENESS, b"")
        if self._resync:
            self._resync = False
            self._catch_up_now("resubscribe")
        elif self.mark.gap:
            self._arm()

    def close(self) -> None:
        self.closed = True
        self.demo.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()

    # -- from the room ---------------------------------------------------------

    def committed(self, seq: int, update: bytes) -> None:
        """This node stored and forwarded ``update`` as ``seq``: tell the others."""
        self.bus.publish(self.room.id, Kind.UPDATE, seq, update)
        if self.mark is None:  # commits come from joined rooms, which are loaded
            return
        self._deliver(self.mark.committed(seq))
        self._settle()

    def publish(self, kind: Kind, body: bytes) -> None:
        self.bus.publish(self.room.id, kind, 0, body)

    async def elsewhere(self) -> int:
        """Connections to the room on the other nodes (0 when the bus cannot say)."""
        try:
            counts = await asyncio.wait_for(self.bus.headcounts([self.room.id]), 1.0)
        except (BusUnavailable, TimeoutError):
            return 0
        return counts.get(self.room.id, 0)

    def publish_seq(self, kind: Kind, seq: int) -> None:
        self.bus.publish(self.room.id, kind, seq, b"")

    # -- from the bus ----------------------------------------------------------

    def received(self, kind: Kind, seq: int, body: bytes) -> None:
        if self.closed:
            return
        if self.mark is None:
            if len(self._early) < MAX_EARLY:
                self._early.append((kind, seq, body))
            else:
                self._resync = True
            return
        if kind is Kind.UPDATE:
            released = self.mark.offer(seq, body)
            if not released and self.mark.has(seq):
                metrics.BUS_DUPLICATES.inc()
            if self.mark.held > MAX_HELD:  # the gap is not closing (the database away?)
                self.mark.forget_held()
            self._deliver(released)
            self._settle()
        elif kind is Kind.AWARENESS:
            self.room.deliver_awareness(body)
        elif kind is Kind.ROOM:
            self.room.deliver_room(body)
        elif kind is Kind.HEAD:
            self.expect(seq)
        elif kind is Kind.COMPACTED:
            self.room.compacted_elsewhere(seq)
        elif kind is Kind.STATE:
            self.demo.received(seq, body)
        elif kind is Kind.SERVICE:
            self.room.deliver_service(body)
        elif kind is Kind.QUERY_AWARENESS:
            states = self.room.awareness.encode_all()
            if states is not None:
                self.publish(Kind.AWARENESS, awareness_message(states))

    def expect(self, seq: int) -> None:
        if self.mark is None or self.closed:
            return
        self.mark.expect(seq)
        self._settle()

    def resubscribed(self, head: int | None) -> None:
        if self.closed:
            return
        if self.mark is None:
            self._resync = True
            return
        self.publish(Kind.QUERY_AWARENESS, b"")
        self.demo.resubscribed()
        if head is None:
            self._catch_up_now("resubscribe")
        else:  # a read of the log only if it went further than this node
            self.expect(head)

    # -- delivery and catch-up -------------------------------------------------

    def _deliver(self, released: list[tuple[int, bytes]]) -> None:
        for _seq, update in released:
            self.room.deliver_update(update)

    def _settle(self) -> None:
        assert self.mark is not None
        self.room.last_seq = self.mark.contiguous
        if self.mark.gap:
            self._arm()
        elif self._timer is not None and self._timer_for_gap:  # closed in time: no read
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        if self.closed:
            return
        if self._task is not None:
            self._again = True
            return
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.grace, self._fire, "gap")
            self._timer_for_gap = True

    def _fire(self, reason: str) -> None:
        self._timer = None
        # A failed catch-up is retried whatever it was for; a gap may have closed meanwhile.
        if self.mark is not None and (reason != "gap" or self.mark.gap):
            self._catch_up_now(reason)

    def _catch_up_now(self, reason: str) -> None:
        if self.closed:
            return
        if self._task is not None:
            self._again = True
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._task = asyncio.get_running_loop().create_task(self._catch_up(reason))

    async def _catch_up(self, reason: str) -> None:
        mark = self.mark
        assert mark is not None
        retry = False
        try:
            for _ in range(MAX_ROUNDS):
                self._again = False
                metrics.BUS_CATCHUPS.labels(reason=reason).inc()
                tail = await self.source.room_log_after(self.room.id, mark.contiguous)
                if tail.snapshot is not None and tail.snapshot_seq > mark.contiguous:
                    metrics.BUS_SNAPSHOT_CATCHUPS.inc()
                    self.room.deliver_state(tail.snapshot, len(tail.updates))
                    self._deliver(mark.jump(tail.snapshot_seq))
                fetched = 0
                for seq, update in tail.updates:
                    released = mark.offer(seq, update)
                    fetched += len(released)
                    self._deliver(released)
                metrics.BUS_CAUGHT_UP.inc(fetched)
                self.room.last_seq = mark.contiguous
                if not self._again:
                    break
                reason = "again"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            metrics.ERRORS.labels(kind="bus_catch_up").inc()
            log.warning("catch-up failed", extra={"room": self.room.id, "error": str(exc)})
            retry = True
        finally:
            self._task = None
        if self.closed:
            return
        if retry:
            self._timer = asyncio.get_running_loop().call_later(
                max(self.grace, RETRY_SECONDS), self._fire, "retry"
            )
            self._timer_for_gap = False
        elif mark.gap:
            self._arm()


__all__ = ["LogTail", "RoomLink", "UpdateSource"]
