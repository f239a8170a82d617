"""Demos watched live: what of a demo played while each viewer was connected.

The server holds the room's playback state (``demos.playback``) and knows who
is connected, so in ``live`` mode it can tell, without asking any client, what
each viewer was shown: for a recording, the seconds of its timeline that
played while they were in the room (seeking jumps over what lies between, and
a paused demo plays nothing); for a walkthrough, the steps the room was on
while they were there. The fraction is that part over the whole timeline
(the recording's length, or the number of steps), per person across their
connections and reconnections while the demo stays loaded.

When a viewer's fraction reaches a milestone (``MILESTONES``: 0.5 and 0.9; the
ledger gives XP at 0.9) one ``DemoWatched`` event is applied with the key
``demo:<demo>:<user>:live:<milestone>``, so a milestone counts once per person
and demo however often it is reached again. Course staff are not viewers:
they present. Self-paced mode is each person's own playing, reported through
``PUT /api/demos/<id>/progress`` (server/progressapi.py).

With several nodes, each node counts the viewers connected to it. When a
viewer's last connection to a node leaves, that node sends what the viewer was
shown to the other nodes holding the room (``RemoteService``), which add it to
what they count for the same person: a viewer moved to another node (a node
drained, a reconnect through the balancer) keeps what they watched, and parts
watched on different nodes add up.

``Coverage`` and ``DemoWatch`` are pure (times are passed in, in server ms);
``DemoWatchService`` feeds them from the rooms: joins and leaves, every
``demo.state`` the room broadcasts (seen through a ``RoomTap``), and a sweep
every second while a demo is live, so milestones come as they are reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

import demos
from progress import DemoWatched
from rooms import STAFF_ROLES, Connection, Room
from rooms.extension import DemoState, ServerMessage, server_time_ms

from .progressfeed import ProgressFeed, key_part

log = logging.getLogger("opencode_live.server")

#: Fractions of a demo at which a ``DemoWatched`` event is applied.
MILESTONES = (0.5, 0.9)
#: Seconds between sweeps of rooms whose recording is playing.
SWEEP_SECONDS = 1.0


@dataclass(slots=True)
class Coverage:
    """What of one demo's timeline was shown to one person."""

    #: Disjoint, sorted ``(start, end)`` seconds of a recording.
    spans: list[tuple[float, float]] = field(default_factory=list)
    #: Step indexes of a walkthrough.
    steps: set[int] = field(default_factory=set)

    def add_span(self, start: float, end: float) -> None:
        if end <= start:
            return
        merged: list[tuple[float, float]] = []
        for lo, hi in self.spans:
            if hi < start or lo > end:
                merged.append((lo, hi))
            else:
                start, end = min(start, lo), max(end, hi)
        merged.append((start, end))
        merged.sort()
        self.spans = merged

    def fraction(self, kind: str, duration: float) -> float:
        """The part of the timeline covered, from 0 to 1."""
        if kind == "walkthrough":
            total = int(duration) + 1
            return min(len([s for s in self.steps if 0 <= s < total]) / total, 1.0)
        if duration <= 0:
            return 0.0
        return min(sum(hi - lo for lo, hi in self.spans) / duration, 1.0)


def shown(
    state: demos.PlaybackState, start_ms: float, end_ms: float
) -> tuple[float, float] | int | None:
    """What live playback in ``state`` showed between two server times: a recording's
    span of seconds, a walkthrough's step index, or None (nothing played)."""
    if state.demo is None or state.mode != "live" or end_ms <= start_ms:
        return None
    if state.kind == "walkthrough":
        return round(state.position)
    if state.kind == "recording" and state.playing:
        lo, hi = state.position_at(start_ms), state.position_at(end_ms)
        return (lo, hi) if hi > lo else None
    return None


@dataclass(frozen=True, slots=True)
class Milestone:
    user: uuid.UUID
    demo: str
    milestone: float
    fraction: float


class DemoWatch:
    """One room's demo and what of it each viewer was shown. Pure: times passed in."""

    def __init__(self, state: demos.PlaybackState, now_ms: float) -> None:
        self.state = state
        self.since = now_ms
        self.coverage: dict[uuid.UUID, Coverage] = {}
        #: ``(user, demo, milestone)`` already reached (told once).
        self.reached: set[tuple[uuid.UUID, str, float]] = set()

    def advance(self, now_ms: float, viewers: Iterable[uuid.UUID]) -> None:
        """``viewers`` were connected from the last call until ``now_ms``."""
        what = shown(self.state, self.since, now_ms)
        self.since = max(self.since, now_ms)
        if what is None:
            return
        for user in set(viewers):
            cover = self.coverage.setdefault(user, Coverage())
            if isinstance(what, int):
                cover.steps.add(what)
            else:
                cover.add_span(*what)

    def set_state(
        self, state: demos.PlaybackState, now_ms: float, viewers: Iterable[uuid.UUID]
    ) -> None:
        """The room's playback changed: what went before is counted, then the new state."""
        self.advance(now_ms, viewers)
        if state.demo != self.state.demo:
            self.coverage.clear()
        self.state = state

    def milestones(self) -> list[Milestone]:
        """Milestones reached since the last call."""
        state = self.state
        if state.demo is None:
            return []
        found = []
        for user, cover in self.coverage.items():
            fraction = cover.fraction(state.kind, state.duration)
            for milestone in MILESTONES:
                mark = (user, state.demo, milestone)
                if fraction + 1e-9 >= milestone and mark not in self.reached:
                    self.reached.add(mark)
                    found.append(Milestone(user, state.demo, milestone, min(fraction, 1.0)))
        return found


class _Tap:
    """Sees the room's ``demo.state`` broadcasts (``rooms.RoomTap``)."""

    def __init__(self, service: DemoWatchService, room: Room) -> None:
        self.service = service
        self.room = room

    def update(self, update: bytes) -> None:
        """Edits do not matter here."""

    def awareness(self, update: bytes) -> None:
        """Nor cursors."""

    def message(self, message: ServerMessage) -> None:
        if isinstance(message, DemoState):
            self.service.playback_changed(self.room)


@dataclass(slots=True)
class _Watched:
    watch: DemoWatch
    tap: _Tap
    #: The connections watching, with who they are.
    viewers: dict[Connection, uuid.UUID] = field(default_factory=dict)


def is_viewer(conn: Connection) -> bool:
    """Who a live demo counts for: everyone but course staff (they present)."""
    return conn.person.role not in STAFF_ROLES


class CoverageNote(msgspec.Struct, array_like=True, frozen=True):
    """What one viewer was shown on one node, for the other nodes (``remote``)."""

    demo: str
    user: bytes
    spans: list[tuple[float, float]]
    steps: list[int]


_note_encoder = msgspec.msgpack.Encoder()
_note_decoder = msgspec.msgpack.Decoder(CoverageNote)


class DemoWatchService:
    """A ``rooms.RoomService`` with no messages of its own."""

    messages: tuple[type, ...] = ()
    #: Its name for coverage handed between nodes (``rooms.RemoteService``).
    remote_tag = "demowatch"

    def __init__(self, feed: ProgressFeed, *, clock: Callable[[], float] = server_time_ms) -> None:
        self.feed = feed
        self.clock = clock
        self._rooms: dict[Room, _Watched] = {}
        self._sweeper: asyncio.Task[None] | None = None

    # -- rooms.RoomService ---------------------------------------------------

    def handle(self, room: Room, conn: Connection, msg: object) -> None:
        """No messages of its own."""

    def greet(self, room: Room, conn: Connection) -> None:
        watched = self._rooms.get(room)
        if watched is None:
            return
        if is_viewer(conn) and conn not in watched.viewers:
            watched.watch.advance(self.clock(), watched.viewers.values())
            watched.viewers[conn] = conn.person.user_id

    def left(self, room: Room, conn: Connection) -> None:
        watched = self._rooms.get(room)
        if watched is None or conn not in watched.viewers:
            return
        watched.watch.advance(self.clock(), watched.viewers.values())
        user = watched.viewers.pop(conn)
        self._tell(room, watched.watch)
        demo = watched.watch.state.demo
        cover = watched.watch.coverage.get(user)
        if (
            room.cluster is not None
            and demo is not None
            and cover is not None
            and user not in watched.viewers.values()
        ):
            note = CoverageNote(demo, user.bytes, list(cover.spans), sorted(cover.steps))
            room.send_service(self.remote_tag, _note_encoder.encode(note))

    def remote(self, room: Room, payload: bytes) -> None:
        """What a viewer was shown on another node: counted here too."""
        try:
            note = _note_decoder.decode(payload)
            user = uuid.UUID(bytes=note.user)
        except (msgspec.MsgspecError, ValueError):
            log.warning("bad demo coverage from the bus", extra={"room": room.id})
            return
        watched = self._rooms.get(room)
        if watched is None or watched.watch.state.demo != note.demo:
            return
        cover = watched.watch.coverage.setdefault(user, Coverage())
        for start, end in note.spans:
            cover.add_span(start, end)
        cover.steps.update(note.steps)
        self._tell(room, watched.watch)

    def demo_loaded(self, room: Room) -> None:
        """Watch the room while a demo is loaded: its later changes come through a tap."""
        if room in self._rooms:
            self.playback_changed(room)
            return
        tap = _Tap(self, room)
        watched = self._rooms[room] = _Watched(DemoWatch(room.playback, self.clock()), tap)
        watched.viewers = {
            c: c.person.user_id for c in room.connections if c.extension and is_viewer(c)
        }
        room.taps.append(tap)

    def room_unloaded(self, room: Room) -> None:
        self._forget(room)

    # -- what the room shows -------------------------------------------------

    def playback_changed(self, room: Room) -> None:
        watched = self._rooms.get(room)
        if watched is None:
            return
        watched.watch.set_state(room.playback, self.clock(), watched.viewers.values())
        self._tell(room, watched.watch)
        if room.playback.demo is None:  # unloaded: nothing to watch until the next load
            self._forget(room)

    def _forget(self, room: Room) -> None:
        watched = self._rooms.pop(room, None)
        if watched is not None and watched.tap in room.taps:
            room.taps.remove(watched.tap)

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def close(self) -> None:
        """Count what played up to now, then stop."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for room, watched in list(self._rooms.items()):
            watched.watch.advance(self.clock(), watched.viewers.values())
            self._tell(room, watched.watch)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                for room, watched in list(self._rooms.items()):
                    state = watched.watch.state
                    # a playing recording, or a walkthrough's step the room stays on
                    if state.mode == "live" and watched.viewers:
                        watched.watch.advance(self.clock(), watched.viewers.values())
                        self._tell(room, watched.watch)
            except Exception:  # a bug of ours must not end the sweeps
                log.exception("demo watch sweep failed")

    def _tell(self, room: Room, watch: DemoWatch) -> None:
        reached = watch.milestones()
        if not reached:
            return
        at = datetime.fromtimestamp(self.clock() / 1000.0, UTC)
        for m in reached:
            self.feed.submit(
                DemoWatched(
                    key=f"demo:{key_part(m.demo)}:{m.user}:live:{m.milestone}",
                    user_id=m.user,
                    occurred_at=at,
                    demo_id=m.demo,
                    fraction=m.fraction,
                ),
                room_id=room.id,
            )
        log.info("demo milestones", extra={"room": room.id, "reached": len(reached)})
