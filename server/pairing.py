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

Across server nodes (a shared bus), the two of a pair may be connected to
different nodes. Each node tells the room's other nodes (``Room.send_service``
with ``remote_tag`` "pairing") which of its local students are here and how
long ago each was last active: when that set changes (a join, a leave), and
at every sweep (a renewal that carries the latest activity). A node's news
holds for ``ttl`` seconds (a few sweeps); a node that stops renewing (killed)
drops out of the others' rooms, its people counted present only up to when
it was last heard. So each node sees everyone present in the room, its own
students and everybody else's, and accrues the pairs with one of ITS students
in them; the event for a person is applied by the person's own node, never by
the partner's, so the key ``pair:<room>:<user>:<partner>:<segment start ms>``
names a stretch only one node credits. A student connected to several nodes
at once is credited by one of them (the smallest node id); time with a remote
partner is credited only up to when that partner's node was last heard from
(and their activity as that node last reported it), which keeps the accrual
conservative. So does ending a pair where someone known only through another
node turns up somewhere new (``comebacks``): a student whose node was killed
and who reconnects through another before the dead node's news expires was
not there in between. What this cannot rule out: while a node's news is on
its way (a few ms on the bus), two nodes may both take a student connected to
both as theirs, for that long at most.

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
import math
import os
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

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
#: A node's presence news holds for this many sweeps unless renewed.
PRESENCE_RENEWALS = 3
#: ... and never less than this many seconds (a busy bus must not end pairs).
MIN_PRESENCE_SECONDS = 2.0
#: This node among a person's whereabouts (``Seen.sources``; node ids are 16 bytes).
LOCAL = frozenset({b""})


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
    at ``segment_start_ms`` (wall clock, ms); ``to``: who of the two is credited
    here (each with the other as partner), the others' nodes credit the rest."""

    a: uuid.UUID
    b: uuid.UUID
    minutes: int
    segment_start_ms: int
    to: tuple[uuid.UUID, ...]


@dataclass(slots=True)
class _PairState:
    #: Clock time up to which the pair was accrued (both known present until then).
    observed: float
    #: Whether both were active at that time.
    active: bool
    #: Who of the pair is credited here, for the whole of its current life.
    to: tuple[uuid.UUID, ...]
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
        *,
        seen: Mapping[uuid.UUID, float] | None = None,
        mine: Collection[uuid.UUID] | None = None,
        restart: Mapping[uuid.UUID, float] | None = None,
    ) -> list[Credit]:
        """Who is present now and when each was last active: credits of the pairs
        that ended (one of them is no longer present) or ran long.

        ``seen``: until when a person is known to have been present, when it is
        not ``now`` (a partner on another node: when their node was last heard
        from; one who left: when they left). A pair is accrued up to the earlier
        of its two, never past. ``mine``: the people credited here (None:
        everyone); pairs without one of them are not followed, and a pair whose
        credited members change ends there and starts again from now.
        ``restart``: people whose presence is known only up to a time and again
        from now, with a gap between that nobody vouches for (they came back
        through another node): their pairs end at that time and start again.
        """
        seen = seen or {}
        restart = restart or {}
        here = sorted(set(present))
        owned = set(here) if mine is None else set(here).intersection(mine)
        now_pairs: dict[Pair, tuple[uuid.UUID, ...]] = {}
        for pair in itertools.combinations(here, 2):
            to = tuple(u for u in pair if u in owned)
            if to:
                now_pairs[pair] = to
        credits: list[Credit] = []
        ended = [
            p
            for p, s in self._pairs.items()
            if now_pairs.get(p) != s.to or p[0] in restart or p[1] in restart
        ]
        for pair in ended:
            state = self._pairs.pop(pair)
            # Observations come at every leave: the pair was together until then.
            end = min(
                self._known(pair, now, seen),
                restart.get(pair[0], now),
                restart.get(pair[1], now),
            )
            end_ms = _wall_at(now, wall_ms, end)
            self._accrue(pair, state, end, end_ms, last_active)
            credits.extend(self._take(pair, state, end, end_ms, final=True))
        for pair, to in now_pairs.items():
            state = self._pairs.get(pair)
            if state is None:  # together from now on: nothing before now is credited
                self._pairs[pair] = _PairState(
                    observed=now, active=self._active(pair, now, last_active), to=to
                )
                continue
            until = self._known(pair, now, seen)
            until_ms = _wall_at(now, wall_ms, until)
            self._accrue(pair, state, until, until_ms, last_active)
            if state.segment_at is not None and until - state.segment_at >= self.flush_every:
                credits.extend(self._take(pair, state, until, until_ms, final=False))
        return credits

    def close(
        self,
        now: float,
        wall_ms: int,
        last_active: Mapping[uuid.UUID, float],
        *,
        seen: Mapping[uuid.UUID, float] | None = None,
    ) -> list[Credit]:
        """Everything credited so far (the room unloads, the server stops)."""
        seen = seen or {}
        credits: list[Credit] = []
        for pair, state in self._pairs.items():
            end = self._known(pair, now, seen)
            end_ms = _wall_at(now, wall_ms, end)
            self._accrue(pair, state, end, end_ms, last_active)
            credits.extend(self._take(pair, state, end, end_ms, final=True))
        self._pairs.clear()
        return credits

    @staticmethod
    def _known(pair: Pair, now: float, seen: Mapping[uuid.UUID, float]) -> float:
        """Until when both of the pair are known to have been present."""
        return min(now, seen.get(pair[0], now), seen.get(pair[1], now))

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
        """Credit the time from ``state.observed`` to ``now`` (both present throughout)."""
        if now <= state.observed:  # nothing known past what was accrued already
            return
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
            credits.append(Credit(pair[0], pair[1], minutes, state.segment_ms, state.to))
        if final:
            state.seconds, state.segment_at, state.segment_ms = 0.0, None, None
        elif minutes >= 1:  # a new segment starts now, with the part of a minute left over
            state.seconds -= minutes * self.minute
            state.segment_at, state.segment_ms = now, wall_ms
        return credits


def _pair(a: uuid.UUID, b: uuid.UUID) -> Pair:
    return (a, b) if a < b else (b, a)


def _wall_at(now: float, wall_ms: int, at: float) -> int:
    """The wall clock (ms) at clock time ``at``, given both clocks at ``now``."""
    return wall_ms - round((now - at) * 1000)


def pairing_people(connections: Iterable[Connection]) -> set[uuid.UUID]:
    """The people present who can pair (students; see the module docstring)."""
    return {c.person.user_id for c in connections if c.person.role in PAIRING_ROLES}


class Presence(msgspec.Struct, array_like=True, frozen=True):
    """A node's students in a room, as it tells the room's other nodes.

    ``people``: each student's id (16 bytes) and how many seconds ago the node
    last saw them active (None: not yet). Ages, not times: the nodes' monotonic
    clocks have nothing in common. The news holds for ``ttl`` seconds; ``ask``:
    the sender just arrived and asks the others for theirs at once.
    """

    node: bytes
    ttl: float
    people: list[tuple[bytes, float | None]]
    ask: bool = False


_presence_encoder = msgspec.msgpack.Encoder()
_presence_decoder = msgspec.msgpack.Decoder(Presence)


@dataclass(slots=True)
class NodeNews:
    """What another node last told of a room: when (this node's clock), for how long,
    and its students with when each was last active (converted to this node's clock)."""

    heard: float
    ttl: float
    people: dict[uuid.UUID, float | None]


@dataclass(slots=True)
class _Shared:
    """A room's pairing state that comes from, or goes to, its other nodes."""

    nodes: dict[bytes, NodeNews] = field(default_factory=dict)
    #: People who left another node (or whose node went silent), with when they were
    #: last known present: the pairs they were in end then, at the next observation.
    gone: dict[uuid.UUID, float] = field(default_factory=dict)
    #: The local students as last told to the others.
    told: frozenset[uuid.UUID] = frozenset()
    #: At the last observation: where each person present was (``Seen.sources``), and
    #: until when those known only through other nodes were known present.
    sources: dict[uuid.UUID, frozenset[bytes]] = field(default_factory=dict)
    seen: dict[uuid.UUID, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Seen:
    """A room as one node sees it for pairing (``merge_presence``): who is present,
    their last activity, until when those not here are known present, and whom this
    node credits."""

    present: set[uuid.UUID]
    last_active: dict[uuid.UUID, float]
    seen: dict[uuid.UUID, float]
    mine: set[uuid.UUID]
    #: Where each person present is: node ids, and ``LOCAL`` for this node.
    sources: dict[uuid.UUID, frozenset[bytes]] = field(default_factory=dict)


def merge_presence(
    node: bytes,
    local: set[uuid.UUID],
    local_active: Mapping[uuid.UUID, float],
    nodes: Mapping[bytes, NodeNews],
    gone: Mapping[uuid.UUID, float],
) -> Seen:
    """Everyone present in a room from this node's students and the others' news.

    Pure. A remote-only person is known present until their node was last heard
    from; someone in ``gone`` and nowhere present until their time there. This
    node credits (``mine``) its students that no node of a smaller id also has.
    """
    present = set(local)
    heard: dict[uuid.UUID, float] = {}
    last_active = {u: t for u, t in local_active.items() if u in local}
    holders: dict[uuid.UUID, list[bytes]] = {}
    for node_id, news in nodes.items():
        for person, active in news.people.items():
            present.add(person)
            holders.setdefault(person, []).append(node_id)
            heard[person] = max(heard.get(person, news.heard), news.heard)
            if active is not None:
                last_active[person] = max(last_active.get(person, active), active)
    seen = {u: t for u, t in heard.items() if u not in local}
    for person, at in gone.items():
        if person not in present:
            seen[person] = at
    mine = {u for u in local if all(node < other for other in holders.get(u, ()))}
    sources = {
        u: frozenset(holders.get(u, ())) | (LOCAL if u in local else frozenset()) for u in present
    }
    return Seen(present, last_active, seen, mine, sources)


def comebacks(
    before: Mapping[uuid.UUID, frozenset[bytes]],
    seen_before: Mapping[uuid.UUID, float],
    now: Mapping[uuid.UUID, frozenset[bytes]],
) -> dict[uuid.UUID, float]:
    """People known only through other nodes at the last observation who are now
    somewhere new as well (this node, another node): until when they were known
    present before. Pure.

    Why: a node's news says its people were there from one renewal to the next;
    someone whose node died and who reconnected elsewhere before its news expired
    was not there in between, and nothing may credit that gap.
    """
    back: dict[uuid.UUID, float] = {}
    for person, where in now.items():
        was = before.get(person)
        if was and not was & LOCAL and not where <= was and person in seen_before:
            back[person] = seen_before[person]
    return back


class PairingService:
    """A ``rooms.RoomService`` with no messages: it watches joins, leaves and activity
    (and, as a ``rooms.RemoteService``, the students of the room's other nodes)."""

    messages: tuple[type, ...] = ()
    #: Its name on the bus (``rooms.RemoteService``).
    remote_tag = "pairing"

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
        #: Rooms shared with other nodes: what they told, what this node told them.
        self._shared: dict[Room, _Shared] = {}
        self._sweeper: asyncio.Task[None] | None = None
        #: This process among the room's nodes (random: it is only compared and matched).
        self.node = uuid.uuid4().bytes
        self.interval = max(self.minute / SWEEPS_PER_MINUTE, 0.05)
        #: How long this node's news holds for the others without a renewal.
        self.ttl = max(PRESENCE_RENEWALS * self.interval, MIN_PRESENCE_SECONDS)

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
        shared = self._shared.pop(room, None)
        if accrual is not None:
            self._apply(room, self._close(room, accrual, shared))

    # -- rooms.RemoteService -------------------------------------------------

    def remote(self, room: Room, payload: bytes) -> None:
        """Another node's students in the room (``Presence``): take it in, observe."""
        try:
            news = _presence_decoder.decode(payload)
        except msgspec.MsgspecError:
            log.warning("pairing: bad presence from another node", extra={"room": room.id})
            return
        if news.node == self.node:
            return
        now = self.clock()
        shared = self._shared.setdefault(room, _Shared())
        people: dict[uuid.UUID, float | None] = {}
        for raw, age in news.people:
            try:
                person = uuid.UUID(bytes=raw)
            except ValueError:
                continue
            if age is None or not math.isfinite(age):
                people[person] = None  # not active yet (or nonsense: not counted)
            else:
                people[person] = now - max(age, 0.0)
        before = shared.nodes.pop(news.node, None)
        if before is not None:
            for person in before.people.keys() - people.keys():
                shared.gone[person] = now  # left that node just now
        if people:
            ttl = min(max(news.ttl, 0.0), 3600.0) if math.isfinite(news.ttl) else self.ttl
            shared.nodes[news.node] = NodeNews(heard=now, ttl=ttl, people=people)
        local = pairing_people(room.connections)
        if news.ask and local:  # a reply never asks back: no two nodes keep asking
            self._tell(room, shared, local, now, ask=False)
        self._observe(room)

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
            self._apply(room, self._close(room, accrual, self._shared.get(room)))
        self._accruals.clear()
        self._shared.clear()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                for room in list(self.rooms()):
                    self._observe(room, renew=True)
            except Exception:  # a bug of ours must not end the sweeps
                log.exception("pairing sweep failed")

    # -- accrual -------------------------------------------------------------

    def _observe(self, room: Room, *, renew: bool = False) -> None:
        """Accrue the room's pairs now; tell the other nodes if the local students
        changed (or, with ``renew``, anyway: the sweep's renewal)."""
        now = self.clock()
        local = pairing_people(room.connections)
        shared = self._shared.get(room)
        if room.cluster is not None:
            if shared is None and local:
                shared = self._shared[room] = _Shared()
            if shared is not None and (local != shared.told or (renew and local)):
                # The first news of students here asks the others for theirs.
                self._tell(room, shared, local, now, ask=bool(local) and not shared.told)
        restart: dict[uuid.UUID, float] = {}
        if shared is not None:
            self._expire(shared, now)
            seen = merge_presence(self.node, local, room.last_active, shared.nodes, shared.gone)
            restart = comebacks(shared.sources, shared.seen, seen.sources)
            shared.gone.clear()
            shared.sources, shared.seen = seen.sources, seen.seen
        else:
            seen = Seen(local, room.last_active, {}, local)
        accrual = self._accruals.get(room)
        if accrual is None:
            if len(seen.present) < 2 or not seen.mine:
                return
            accrual = self._accruals[room] = PairAccrual(
                minute=self.minute,
                window=ACTIVE_MINUTES * self.minute,
                flush_every=FLUSH_MINUTES * self.minute,
            )
        credits = accrual.observe(
            now,
            self._wall_ms(),
            seen.present,
            seen.last_active,
            seen=seen.seen,
            mine=seen.mine,
            restart=restart,
        )
        if not accrual.pairs:
            del self._accruals[room]
        self._apply(room, credits)

    def _close(self, room: Room, accrual: PairAccrual, shared: _Shared | None) -> list[Credit]:
        now = self.clock()
        if shared is None:
            return accrual.close(now, self._wall_ms(), room.last_active)
        self._expire(shared, now)
        local = pairing_people(room.connections)
        seen = merge_presence(self.node, local, room.last_active, shared.nodes, shared.gone)
        return accrual.close(now, self._wall_ms(), seen.last_active, seen=seen.seen)

    @staticmethod
    def _expire(shared: _Shared, now: float) -> None:
        """Nodes that stopped renewing (killed): their people present until last heard."""
        for node_id, news in list(shared.nodes.items()):
            if now > news.heard + news.ttl:
                del shared.nodes[node_id]
                for person in news.people:
                    shared.gone[person] = max(shared.gone.get(person, news.heard), news.heard)

    def _tell(
        self, room: Room, shared: _Shared, local: set[uuid.UUID], now: float, *, ask: bool
    ) -> None:
        """This node's students and their activity, to the room's other nodes."""
        people = []
        for person in sorted(local):
            active = room.last_active.get(person)
            people.append((person.bytes, None if active is None else max(now - active, 0.0)))
        shared.told = frozenset(local)
        news = Presence(node=self.node, ttl=self.ttl, people=people, ask=ask)
        room.send_service(self.remote_tag, _presence_encoder.encode(news))

    def _apply(self, room: Room, credits: list[Credit]) -> None:
        if not credits:
            return
        at = datetime.fromtimestamp(self.wall(), UTC)
        where = key_part(room.id)
        for credit in credits:
            for user, partner in ((credit.a, credit.b), (credit.b, credit.a)):
                if user not in credit.to:  # the partner's own node credits them
                    continue
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
