"""Pairing minutes: time two people spent working together in a room, as progress events.

What counts as pairing: two different signed-in **students** connected to the
same room at the same time and both **active**, meaning the server saw an
accepted edit or a run from each within the last ``ACTIVE_MINUTES``. Idling
in the same room together is not pairing, and neither is one person typing
while the other is away.

Who is a partner: students only. Instructors, teaching assistants and admins
neither earn pairing minutes nor give them: a teacher helping in a room is
teaching, not pairing, and counting them would let one instructor in a room
of thirty hand out pairing minutes (and XP) to everyone at once. What
students expect from "minutes pairing with a partner" is time with a peer.

Minutes are whole minutes per pair, applied as one ``PairingMinutes`` event
per person of the pair (each with the other as partner) when one of them
leaves (the rest of a minute is dropped), when the room unloads, at shutdown,
and every ``FLUSH_MINUTES`` for long sessions (the rest carries on). The key
``pair:<room>:<user>:<partner>:<segment start ms>`` names the stretch of time
credited, so retrying or replaying an event changes nothing.

The accrual is conservative: time is only credited between two observations
(a join, a leave, or the periodic sweep every few seconds) during which both
were present, and a pair that just became active starts counting at the later
of the two activities the server saw, never earlier. ``PairAccrual`` is the
pure logic (clock passed in, unit-tested with a fake clock); ``PairingService``
feeds it from the rooms.

Test hook: a minute lasts 60 seconds. The environment variable
``OPENCODE_LIVE_PAIRING_MINUTE_SECONDS`` shortens it (and with it the activity
window, the flush interval and the sweep) so that the integration test sees a
real room accrue minutes in seconds. It is deliberately not a documented
setting: no operator should change what a minute is.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from progress import PairingMinutes
from rooms import Connection, Room

from .progressfeed import ProgressFeed, key_part

log = logging.getLogger("opencode_live.server")

MINUTE_ENV = "OPENCODE_LIVE_PAIRING_MINUTE_SECONDS"
#: A person counts as active this long after their last edit or run.
ACTIVE_MINUTES = 5
#: A long session is credited this often.
FLUSH_MINUTES = 5
#: Sweeps per minute: how finely presence is sampled between joins and leaves.
SWEEPS_PER_MINUTE = 6
#: Most minutes one event may carry (the ledger's own limit).
MAX_MINUTES = 1440
#: Global roles that pair (see the module docstring).
PAIRING_ROLES = frozenset({"student"})


def minute_seconds() -> float:
    """Seconds in a pairing minute: 60, unless the test hook shortens it."""
    raw = os.environ.get(MINUTE_ENV, "")
    try:
        value = float(raw) if raw else 60.0
    except ValueError:
        value = 60.0
    return value if value > 0 else 60.0


Pair = tuple[uuid.UUID, uuid.UUID]


@dataclass(frozen=True, slots=True)
class Credit:
    """Whole minutes the pair ``(a, b)`` worked together in the segment that began
    at ``segment_start_ms`` (wall clock, ms)."""

    a: uuid.UUID
    b: uuid.UUID
    minutes: int
    segment_start_ms: int


@dataclass(slots=True)
class _PairState:
    #: Clock time of the last observation with both present.
    observed: float
    #: Whether both were active at that observation.
    active: bool
    #: Seconds credited in the current segment.
    seconds: float = 0.0
    #: Clock time and wall ms the current segment began (None: nothing credited yet).
    segment_at: float | None = None
    segment_ms: int | None = None


class PairAccrual:
    """Active time of the pairs in one room. Pure: the caller passes the clock."""

    def __init__(self, *, minute: float = 60.0, window: float = 300.0, flush_every: float = 300.0):
        self.minute = minute
        self.window = window
        self.flush_every = flush_every
        self._pairs: dict[Pair, _PairState] = {}

    @property
    def pairs(self) -> int:
        return len(self._pairs)

    def seconds(self, a: uuid.UUID, b: uuid.UUID) -> float:
        """Seconds credited to the pair's current segment (0 if none)."""
        state = self._pairs.get(_pair(a, b))
        return state.seconds if state is not None else 0.0

    def observe(
        self,
        now: float,
        wall_ms: int,
        present: Iterable[uuid.UUID],
        last_active: Mapping[uuid.UUID, float],
    ) -> list[Credit]:
        """Who is present now and when each was last active: credits of the pairs
        that ended (one of them is no longer present) or ran long."""
        here = sorted(set(present))
        now_pairs = set(itertools.combinations(here, 2))
        credits: list[Credit] = []
        for pair in [p for p in self._pairs if p not in now_pairs]:
            state = self._pairs.pop(pair)
            # Observations come at every leave: the pair was together until now.
            self._accrue(pair, state, now, wall_ms, last_active)
            credits.extend(self._take(pair, state, now, wall_ms, final=True))
        for pair in now_pairs:
            state = self._pairs.get(pair)
            if state is None:  # together from now on: nothing before now is credited
                self._pairs[pair] = _PairState(
                    observed=now, active=self._active(pair, now, last_active)
                )
                continue
            self._accrue(pair, state, now, wall_ms, last_active)
            if state.segment_at is not None and now - state.segment_at >= self.flush_every:
                credits.extend(self._take(pair, state, now, wall_ms, final=False))
        return credits

    def close(
        self, now: float, wall_ms: int, last_active: Mapping[uuid.UUID, float]
    ) -> list[Credit]:
        """Everything credited so far (the room unloads, the server stops)."""
        credits: list[Credit] = []
        for pair, state in self._pairs.items():
            self._accrue(pair, state, now, wall_ms, last_active)
            credits.extend(self._take(pair, state, now, wall_ms, final=True))
        self._pairs.clear()
        return credits

    def _active(self, pair: Pair, now: float, last_active: Mapping[uuid.UUID, float]) -> bool:
        la, lb = last_active.get(pair[0]), last_active.get(pair[1])
        return la is not None and lb is not None and now <= min(la, lb) + self.window

    def _accrue(
        self,
        pair: Pair,
        state: _PairState,
        now: float,
        wall_ms: int,
        last_active: Mapping[uuid.UUID, float],
    ) -> None:
        la, lb = last_active.get(pair[0]), last_active.get(pair[1])
        if la is not None and lb is not None:
            until = min(now, min(la, lb) + self.window)
            # Active at the last observation: on since then. Else it began at the
            # later of the two activities seen (it may have begun earlier: not credited).
            since = state.observed if state.active else max(state.observed, la, lb)
            if until > since:
                if state.segment_at is None:
                    state.segment_at = since
                    state.segment_ms = wall_ms - round((now - since) * 1000)
                state.seconds += until - since
        state.observed = now
        state.active = self._active(pair, now, last_active)

    def _take(
        self, pair: Pair, state: _PairState, now: float, wall_ms: int, *, final: bool
    ) -> list[Credit]:
        minutes = min(int((state.seconds + 1e-6) // self.minute), MAX_MINUTES)
        credits = []
        if minutes >= 1 and state.segment_ms is not None:
            credits.append(Credit(pair[0], pair[1], minutes, state.segment_ms))
        if final:
            state.seconds, state.segment_at, state.segment_ms = 0.0, None, None
        elif minutes >= 1:  # a new segment starts now, with the part of a minute left over
            state.seconds -= minutes * self.minute
            state.segment_at, state.segment_ms = now, wall_ms
        return credits


def _pair(a: uuid.UUID, b: uuid.UUID) -> Pair:
    return (a, b) if a < b else (b, a)


def pairing_people(connections: Iterable[Connection]) -> set[uuid.UUID]:
    """The people present who can pair (students; see the module docstring)."""
    return {c.person.user_id for c in connections if c.person.role in PAIRING_ROLES}


class PairingService:
    """A ``rooms.RoomService`` with no messages: it watches joins, leaves and activity."""

    messages: tuple[type, ...] = ()

    def __init__(
        self,
        feed: ProgressFeed,
        rooms: Callable[[], Iterable[Room]],
        *,
        minute: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.feed = feed
        self.rooms = rooms
        self.minute = minute if minute is not None else minute_seconds()
        #: Must be the clock ``Room.last_active`` is written with (``time.monotonic``).
        self.clock = clock
        self.wall = wall
        self._accruals: dict[Room, PairAccrual] = {}
        self._sweeper: asyncio.Task[None] | None = None

    # -- rooms.RoomService ---------------------------------------------------

    def handle(self, room: Room, conn: Connection, msg: object) -> None:
        """No messages of its own."""

    def greet(self, room: Room, conn: Connection) -> None:
        self._observe(room)

    def left(self, room: Room, conn: Connection) -> None:
        self._observe(room)

    def demo_loaded(self, room: Room) -> None:
        """Pairing does not depend on the demo."""

    def room_unloaded(self, room: Room) -> None:
        accrual = self._accruals.pop(room, None)
        if accrual is not None:
            self._apply(room, accrual.close(self.clock(), self._wall_ms(), room.last_active))

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def close(self) -> None:
        """Credit every pair still together (the server is stopping)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for room, accrual in list(self._accruals.items()):
            self._apply(room, accrual.close(self.clock(), self._wall_ms(), room.last_active))
        self._accruals.clear()

    async def _sweep(self) -> None:
        interval = max(self.minute / SWEEPS_PER_MINUTE, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                for room in list(self.rooms()):
                    self._observe(room)
            except Exception:  # a bug of ours must not end the sweeps
                log.exception("pairing sweep failed")

    # -- accrual -------------------------------------------------------------

    def _observe(self, room: Room) -> None:
        present = pairing_people(room.connections)
        accrual = self._accruals.get(room)
        if accrual is None:
            if len(present) < 2:
                return
            accrual = self._accruals[room] = PairAccrual(
                minute=self.minute,
                window=ACTIVE_MINUTES * self.minute,
                flush_every=FLUSH_MINUTES * self.minute,
            )
        credits = accrual.observe(self.clock(), self._wall_ms(), present, room.last_active)
        if not accrual.pairs:
            del self._accruals[room]
        self._apply(room, credits)

    def _apply(self, room: Room, credits: list[Credit]) -> None:
        if not credits:
            return
        at = datetime.fromtimestamp(self.wall(), UTC)
        where = key_part(room.id)
        for credit in credits:
            for user, partner in ((credit.a, credit.b), (credit.b, credit.a)):
                self.feed.submit(
                    PairingMinutes(
                        key=f"pair:{where}:{user}:{partner}:{credit.segment_start_ms}",
                        user_id=user,
                        occurred_at=at,
                        partner_id=partner,
                        minutes=credit.minutes,
                        room_id=room.id,
                    ),
                    room_id=room.id,
                )
        log.info("pairing minutes", extra={"room": room.id, "pairs": len(credits)})

    def _wall_ms(self) -> int:
        return round(self.wall() * 1000)
