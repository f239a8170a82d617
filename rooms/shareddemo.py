"""A room's demo on several nodes: one record in Redis, changed by compare-and-swap.

Why not just forward the presenters' commands to the other nodes: two
presenters on two nodes pressing play and pause at once would leave the nodes
disagreeing for good about where the demo is, and a viewer who joins on a node
that did not see the last command would land somewhere else. So the demo
(the playback state as clients get it, the highlights of the files copied into
the room, and which load it belongs to) is one record with a version. A node
changes it only from the version it holds: a Lua script swaps the record and
publishes it in one step, so every node sees the versions in the order Redis
stored them, and a node that lost the race reads the winner's record and
applies its command to that, as a presenter pressing a button a moment later
would have. A node loading the room reads the record first, so a joiner lands
where everyone is.

While Redis is away a command applies on this node alone (the room keeps
working there); when Redis is back, a node whose record changed meanwhile
writes it over the stored one (the last presenter wins), and the others read it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

import demos

from . import extension, metrics
from .bus import Bus, BusUnavailable

if TYPE_CHECKING:
    from .room import Room

log = logging.getLogger("opencode_live.rooms")

#: Swaps lost in a row before a command gives up (someone else keeps changing the demo).
MAX_TRIES = 5
#: Longest wait for the stored record (a room loading waits on it; Redis may hang).
READ_SECONDS = 2.0
#: After Redis came back: tries (a second apart) to push or read the record.
REJOIN_TRIES = 30
RETRY_SECONDS = 1.0


class DemoRecord(msgspec.Struct, array_like=True, frozen=True):
    #: The ``demo.state`` message as clients get it (``extension.encode_server``).
    state: bytes
    #: The ``demo.highlights`` message of the last copy, or empty.
    highlights: bytes = b""
    #: The version at which the loaded demo was loaded: a new value is a new load.
    load: int = 0


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(DemoRecord)


@dataclass(frozen=True, slots=True)
class DemoChange:
    """What a command makes of the room's demo."""

    state: demos.PlaybackState
    by: str
    highlights: extension.DemoHighlights | None
    timeline: demos.Timeline | None
    #: The command loads a demo (anew): services start over with it.
    loads: bool = False


#: Builds the change from the room's current demo; None: refused (its sender was told).
Command = Callable[[], DemoChange | None]


def playback_of(message: extension.DemoState) -> demos.PlaybackState:
    return demos.PlaybackState(
        demo=message.demo,
        position=message.position,
        playing=message.playing,
        rate=message.rate,
        at=message.at,
        kind=message.kind,  # type: ignore[arg-type]
        duration=message.duration,
        mode=message.mode,  # type: ignore[arg-type]
    )


class SharedDemo:
    def __init__(self, room: Room, bus: Bus) -> None:
        self.room = room
        self.bus = bus
        #: The version of the record the room shows (0: none stored yet).
        self.version = 0
        #: The version of the current load (``DemoRecord.load``).
        self.load = 0
        #: Changed while Redis was away: written over the stored record when it is back.
        self.dirty = False
        self._timeline: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- reading ---------------------------------------------------------------

    async def fetch(self, *, anew: bool = False) -> None:
        """Show the stored record if it is newer (a room loading, a lost swap).

        ``anew``: after Redis was away, show the stored record whatever its
        version, for a Redis that lost its data counts versions from 0 again.
        """
        try:
            await self._read(anew=anew)
        except BusUnavailable as exc:
            log.warning("demo record not read", extra={"room": self.room.id, "error": str(exc)})

    async def _read(self, *, anew: bool = False) -> None:
        try:
            stored = await asyncio.wait_for(self.bus.load_state(self.room.id), READ_SECONDS)
        except TimeoutError as exc:
            raise BusUnavailable("no answer in time") from exc
        if stored is not None:
            self.received(*stored, anew=anew)
        elif anew:
            self.version = 0  # whatever is stored next is newer than what this node shows
        await self.settled()

    def received(self, version: int, body: bytes, *, anew: bool = False) -> None:
        """A record another node stored (through the bus, or read back)."""
        if version <= self.version and not anew:
            return
        try:
            record = _decoder.decode(body)
            state = extension.decode_server(record.state)
            highlights = extension.decode_server(record.highlights) if record.highlights else None
        except (msgspec.MsgspecError, extension.ExtensionError):
            metrics.ERRORS.labels(kind="bad_bus_message").inc()
            return
        if not isinstance(state, extension.DemoState) or not (
            highlights is None or isinstance(highlights, extension.DemoHighlights)
        ):
            metrics.ERRORS.labels(kind="bad_bus_message").inc()
            return
        if highlights == self.room.highlights:  # the same copy: not shown again
            highlights = self.room.highlights
        self.version = version
        loads = record.load != self.load
        self.load = record.load
        playback = playback_of(state)
        timeline = self.room.timeline
        if playback.demo is None:
            timeline = None
        elif timeline is None or timeline.demo != playback.demo:
            timeline = None  # the services hear of the load once the timeline is here
            self._look_up(playback.demo, record.load)
        self.room.adopt_demo(
            DemoChange(
                playback, state.by, highlights, timeline, loads=loads and timeline is not None
            )
        )

    def _look_up(self, demo_id: str, load: int) -> None:
        """The loaded demo's timeline (steps, markers), which the record does not carry."""

        async def look_up() -> None:
            library = self.room.library
            if library is None:
                return
            try:
                timeline = await library.timeline(demo_id)
            except Exception as exc:
                log.warning("demo lookup failed", extra={"room": self.room.id, "error": str(exc)})
                return
            if timeline is not None and self.load == load and self.room.playback.demo == demo_id:
                self.room.set_timeline(timeline)

        if self._timeline is not None:
            self._timeline.cancel()
        self._timeline = self._spawn(look_up())

    async def settled(self) -> None:
        """Wait for the timeline of a demo loaded elsewhere (a command may need its steps)."""
        task = self._timeline
        if task is not None and not task.done():
            await asyncio.gather(task, return_exceptions=True)

    # -- changing --------------------------------------------------------------

    async def commit(self, command: Command) -> bool:
        """Apply ``command`` to the shared record; False: gave up (others kept changing it)."""
        for _ in range(MAX_TRIES):
            await self.settled()
            change = command()
            if change is None:
                return True  # refused, and its sender told why
            version = self.version
            load = version + 1 if change.loads else self.load
            body = self._encode(change, load)
            try:
                stored = await self.bus.swap_state(self.room.id, version, body)
            except BusUnavailable as exc:
                log.warning(
                    "demo changed on this node only",
                    extra={"room": self.room.id, "error": str(exc)},
                )
                self.dirty = True
                self._adopt_own(version + 1, load, change)
                return True
            if stored is None:
                if self.version == version:  # nothing newer arrived meanwhile
                    self._adopt_own(version + 1, load, change)
                return True
            metrics.DEMO_SWAPS_LOST.inc()
            await self.fetch()
        return False

    def _adopt_own(self, version: int, load: int, change: DemoChange) -> None:
        self.version = version
        self.load = load
        self.room.adopt_demo(change)

    def resubscribed(self) -> None:
        """Redis is back: push this node's change made meanwhile, or read the others'."""
        self._spawn(self._rejoin())

    async def _rejoin(self) -> None:
        for _ in range(REJOIN_TRIES):
            try:
                if self.dirty:
                    await self._push()
                else:
                    await self._read(anew=True)
                return
            except BusUnavailable as exc:
                log.warning(
                    "demo record not shared yet", extra={"room": self.room.id, "error": str(exc)}
                )
            await asyncio.sleep(RETRY_SECONDS)

    async def _push(self) -> None:
        """Write what this node shows over the stored record (changed while Redis was away)."""
        room = self.room
        change = DemoChange(room.playback, room.playback_by, room.highlights, room.timeline)
        body = self._encode(change, self.load)
        for _ in range(MAX_TRIES):
            stored = await self.bus.load_state(room.id)
            version = stored[0] if stored is not None else 0
            if await self.bus.swap_state(room.id, version, body) is None:
                self.dirty = False
                self._adopt_own(version + 1, self.load, change)
                return

    def _encode(self, change: DemoChange, load: int) -> bytes:
        return _encoder.encode(
            DemoRecord(
                state=extension.encode_server(self.room.demo_state_of(change.state, change.by)),
                highlights=extension.encode_server(change.highlights)
                if change.highlights is not None
                else b"",
                load=load,
            )
        )

    def _spawn(self, work: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()


__all__ = ["DemoChange", "DemoRecord", "SharedDemo"]
