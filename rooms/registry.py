"""The rooms of one process: brought to life on first join, unloaded after the last leaves.

Joiners that arrive while a room is loading all wait on the same load and are
all synced when it is done (a load that fails tells each of them so); none
waits forever. A room is unloaded ``unload_grace_seconds`` after its last
connection leaves, unless someone joins again meanwhile.

With a shared bus (several processes), a room is subscribed to before its log
is read, so that nothing committed elsewhere falls between the two, and
unsubscribed when it is unloaded: a node follows only the rooms it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Protocol

from crdt import ProtocolError

from . import metrics
from .bus import Bus, BusUnavailable, Kind, LocalBus
from .closecodes import CloseCode
from .cluster import RoomLink, UpdateSource
from .commit import GroupCommit
from .connection import Connection
from .limits import RoomLimits
from .room import Compactor, DemoLibrary, Room, RoomService, service_message

log = logging.getLogger("opencode_live.rooms")


class StoredRoom(Protocol):
    """A room as the store returns it (``store.RoomRecord``)."""

    @property
    def last_seq(self) -> int: ...

    def as_updates(self) -> list[bytes]: ...


class RoomStore(Compactor, Protocol):
    """What the registry needs of the store (``store.Store`` provides it)."""

    def load_room(self, room_id: str) -> Awaitable[StoredRoom]: ...


class JoinRefused(Exception):
    """The room cannot take this connection; ``code`` is the close code to send."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class RoomRegistry:
    def __init__(
        self,
        limits: RoomLimits,
        store: RoomStore,
        commit: GroupCommit,
        services: Sequence[RoomService] = (),
        library: DemoLibrary | None = None,
        bus: Bus | None = None,
    ) -> None:
        self.limits = limits
        #: Where rooms meet their copies on other nodes (LocalBus: one process).
        self.bus: Bus = bus if bus is not None else LocalBus()
        #: Given to every room: the features behind its extension messages.
        self.services = tuple(services)
        self.library = library
        self.rooms: dict[str, Room] = {}
        self.store = store
        self.commit = commit
        self._unload_timers: dict[str, asyncio.TimerHandle] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._loads: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_awareness())

    async def close(
        self, code: int = CloseCode.GOING_AWAY, reason: str = "server shutting down"
    ) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for timer in self._unload_timers.values():
            timer.cancel()
        self._unload_timers.clear()
        for room in list(self.rooms.values()):
            room.close_all(code, reason)
            await room.drain()
            if room.cluster is not None:
                room.cluster.close()

    def tell_service(self, room_id: str, tag: str, payload: bytes) -> None:
        """``payload`` for the service ``tag`` of the room on the other nodes
        (``RemoteService``), whether or not this node holds the room."""
        self.bus.publish(room_id, Kind.SERVICE, 0, service_message(tag, payload))

    def notify_all(self, level: str, code: str, text: str) -> None:
        """A notice to every opted-in client of every room."""
        for room in self.rooms.values():
            for conn in room.connections:
                room.notify(conn, level, code, text)

    async def join(self, room_id: str, conn: Connection) -> Room:
        """Put ``conn`` in the room, loading it first if needed; may raise JoinRefused."""
        room = await self._acquire(room_id, connection=True)
        room.joining -= 1
        room.join(conn)
        self.bus.count(room.id, len(room.connections))
        return room

    @contextlib.asynccontextmanager
    async def hold(self, room_id: str) -> AsyncIterator[Room]:
        """The loaded room, kept in memory while the caller (the HTTP API) works on it."""
        room = await self._acquire(room_id, connection=False)
        try:
            yield room
        finally:
            room.joining -= 1
            self._maybe_unload(room)

    async def _acquire(self, room_id: str, *, connection: bool) -> Room:
        """The loaded room with ``joining`` counted up for the caller."""
        room = self.rooms.get(room_id)
        if room is None:
            if len(self.rooms) >= self.limits.max_rooms:
                raise JoinRefused(CloseCode.TRY_AGAIN_LATER, "server is at its room limit")
            room = Room(room_id, self.limits, self.commit, self.store)
            for service in self.services:
                room.add_service(service)
            room.library = self.library
            room.on_released = self._maybe_unload
            if self.bus.shared:
                room.cluster = RoomLink(room, self.bus, self._update_source())
            self.rooms[room_id] = room
            metrics.ROOMS.set(len(self.rooms))
            task = asyncio.get_running_loop().create_task(self._load(room))
            self._loads.add(task)
            task.add_done_callback(self._loads.discard)
        self._cancel_unload(room_id)
        if connection and (
            len(room.connections) + room.joining >= self.limits.max_connections_per_room
        ):
            raise JoinRefused(CloseCode.TRY_AGAIN_LATER, "room is full")
        room.joining += 1
        try:
            await asyncio.shield(room.loaded)
        except Exception as exc:
            room.joining -= 1
            raise JoinRefused(CloseCode.INTERNAL_ERROR, "room could not be loaded") from exc
        return room

    def leave(self, room: Room, conn: Connection) -> None:
        room.leave(conn)
        self.bus.count(room.id, len(room.connections))
        self._maybe_unload(room)

    async def headcounts(self, room_ids: list[str], timeout: float = 1.0) -> dict[str, int]:
        """Connections to each room on every node (this node's alone when the bus
        cannot say: a listing is better slightly low than late)."""
        here = {r: len(self.rooms[r].connections) if r in self.rooms else 0 for r in room_ids}
        if not self.bus.shared:
            return here
        try:
            elsewhere = await asyncio.wait_for(self.bus.headcounts(room_ids), timeout)
        except (BusUnavailable, TimeoutError):
            return here
        return {r: here[r] + elsewhere.get(r, 0) for r in room_ids}

    def _update_source(self) -> UpdateSource:
        store = self.store
        if not hasattr(store, "room_log_after"):
            raise TypeError("a shared bus needs a store that can read a room's log tail")
        return store  # type: ignore[return-value]

    async def _load(self, room: Room) -> None:
        try:
            if room.cluster is not None:
                await self.bus.attach(room.id, room.cluster)
            record = await self.store.load_room(room.id)
            updates = record.as_updates()
            for update in updates:
                try:
                    room.document.apply_update(update)
                except ProtocolError:
                    # Stored updates were checked on the way in; one that still
                    # fails must not make the whole room unloadable.
                    metrics.ERRORS.labels(kind="bad_stored_update").inc()
                    log.error("stored update skipped", extra={"room": room.id})
            room.last_seq = record.last_seq
            room.log_rows = len(updates)
            room.log_bytes = sum(len(u) for u in updates)
            if room.cluster is not None:
                room.cluster.start(record.last_seq)
                await room.cluster.demo.fetch()  # a joiner lands where the demo is
        except Exception as exc:
            log.exception("room load failed", extra={"room": room.id})
            metrics.ERRORS.labels(kind="room_load").inc()
            if self.rooms.get(room.id) is room:
                del self.rooms[room.id]
                metrics.ROOMS.set(len(self.rooms))
            self._unlink(room)
            room.loaded.set_exception(exc)
            room.loaded.exception()  # joiners see it; a room nobody waited for must not warn
            return
        room.loaded.set_result(None)

    def _maybe_unload(self, room: Room) -> None:
        if room.connections or room.joining or room.kept or self.rooms.get(room.id) is not room:
            return
        self._cancel_unload(room.id)
        loop = asyncio.get_running_loop()
        self._unload_timers[room.id] = loop.call_later(
            self.limits.unload_grace_seconds, self._unload, room
        )

    def _cancel_unload(self, room_id: str) -> None:
        timer = self._unload_timers.pop(room_id, None)
        if timer is not None:
            timer.cancel()

    def _unload(self, room: Room) -> None:
        self._unload_timers.pop(room.id, None)
        if room.connections or room.joining or room.kept or self.rooms.get(room.id) is not room:
            return
        if room.uncommitted:
            # Its updates are still on their way to the log (the database may
            # be away): a new copy loaded now would miss them. Look again later.
            self._unload_timers[room.id] = asyncio.get_running_loop().call_later(
                max(self.limits.unload_grace_seconds, 0.5), self._unload, room
            )
            return
        del self.rooms[room.id]
        metrics.ROOMS.set(len(self.rooms))
        self._unlink(room)
        log.info("room unloaded", extra={"room": room.id})
        # Services may hold per-room state past the room's connections (a
        # recording in progress is stopped and saved here).
        for service in self.services:
            service.room_unloaded(room)

    def _unlink(self, room: Room) -> None:
        if room.cluster is not None:
            room.cluster.close()
            self.bus.detach(room.id)

    async def _sweep_awareness(self) -> None:
        interval = max(0.05, self.limits.awareness_timeout_seconds / 10)
        while True:
            await asyncio.sleep(interval)
            for room in list(self.rooms.values()):
                room.expire_awareness()
