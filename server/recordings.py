"""Recording rooms: staff start and stop a recording, which is saved to the demo library.

The room hands its ``record`` messages here (a ``rooms.RoomService``); the HTTP
API (``recordingsapi``) calls the same methods. A recording is a
``demos.Recorder`` on the room's taps: it sees the room's own stored updates,
run output and cursors, so replaying it reproduces the workspace exactly.

Why saving is careful: a recording is a lesson that cannot be given again. The
demo is built off the event loop (it can be megabytes of JSON); when the
library cannot be written it is kept in memory, the presenter is told
(``unavailable``), and it is tried again at the next stop and on a timer with
back-off, and once more at shutdown. A room that unloads (everyone left, the
registry's grace passed) stops its recording and saves it; so does shutdown.

With several nodes (``REDIS_URL``), a room's recording is the room's on every
node, as its run is (``runs``): the room's recording slot lives in Redis
(``recordslots.RecordSlots``), so a second start on any node is refused as on
the node that holds it, and a joiner on any node is told what the slot says.
A stop or a marker asked for on another node is checked there (permission,
label) and forwarded over the room's bus to the holding node (this service is
a ``rooms.RemoteService``), which answers on the bus too: the HTTP API on the
asking node can then answer with the saved demo or the marker, and everyone
else hears of it from the holding node's broadcasts, which cross nodes. The
holding node keeps the room in memory while it records (``RoomKeeper.hold``),
since the people being recorded may all be on other nodes: there a recording
ends only on stop, at its size or time cap, or at shutdown. Without Redis
nothing of this applies (and nothing changes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import msgspec

from demos.format import Marker as MarkerEvent
from demos.recorder import MAX_BYTES, Recorder
from rooms import Connection, Person, Room, can_control_demo, metrics
from rooms.access import a_or_an
from rooms.extension import Marker, RecordControl, RecordState, server_time_ms

from .recordslots import RecordSlot, RecordSlots

log = logging.getLogger("opencode_live.server")

DEMO_ID = re.compile(r"(?!\.{1,2}\Z)[A-Za-z0-9._-]{1,128}\Z")
MAX_TITLE = 200
MAX_LABEL = 200
#: Recordings whose save failed, kept for another try (oldest dropped past this).
MAX_UNSAVED = 16
#: First wait before saving a failed recording again; doubles up to ``MAX_RETRY_SECONDS``.
RETRY_SECONDS = 5.0
MAX_RETRY_SECONDS = 300.0
#: How long shutdown waits for recordings to be saved.
SHUTDOWN_SAVE_SECONDS = 10.0
#: Longest recording a node keeps a room in memory for (with several nodes, where a
#: room being recorded is not unloaded when its last person here leaves).
MAX_SECONDS = 4 * 3600.0
#: With several nodes: how often the recording node looks for people on the others.
ALONE_CHECK_SECONDS = 2.0
#: How long a node waits for the holding node's answer to a forwarded marker, and
#: to a forwarded stop (answered once the recording is saved, or not).
MARKER_ANSWER_SECONDS = 5.0
STOP_ANSWER_SECONDS = 30.0
#: How long shutdown lets the last answers to other nodes go out, once recordings are saved.
CHORES_SECONDS = 0.5


class DemoStore(Protocol):
    """What saving needs of the store (``store.Store`` provides it)."""

    async def put_demo(
        self, demo_id: str, title: str, kind: str, document: str, by: uuid.UUID | None
    ) -> bool: ...


class RecordRefused(Exception):
    """A record command turned down: the notice code, the HTTP status, and why."""

    def __init__(self, code: str, text: str, status: int = 409) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.status = status


@dataclass
class Session:
    """A recording in progress in one room."""

    room: Room
    recorder: Recorder
    demo_id: str
    title: str
    by: Person
    #: Server time (ms) it started.
    started: float
    #: The socket that started it (None: over HTTP): told when saving fails.
    presenter: Connection | None
    #: Names it in the room's shared slot and in stops forwarded from other nodes.
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    #: Set once it is stopped and its first save is over (the room may unload then).
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    #: Its time cap, while a node keeps the room in memory for it.
    cap: asyncio.TimerHandle | None = None
    #: Lets the room unload again once saved (``Room.keep``; with several nodes only).
    release_room: Callable[[], None] | None = None

    def state(self) -> RecordState:
        return RecordState(
            recording=True,
            by=self.by.name,
            started=self.started,
            events=len(self.recorder.events),
        )


@dataclass
class Outcome:
    """How a stop ended: saved under ``demo``, or kept for another try (``error`` says why)."""

    room: str
    demo: str
    title: str
    events: int
    duration: float
    saved: bool
    error: str = ""


class RecordAsk(msgspec.Struct, tag="ask"):
    """A stop or marker for the recording held by node ``holder``, checked by node ``asker``."""

    request: str
    asker: str
    holder: str
    session: str
    action: Literal["stop", "marker"]
    label: str | None = None


class RecordAnswer(msgspec.Struct, tag="answer"):
    """The holding node's answer: refused (``code``), a marker, or a stop's outcome."""

    request: str
    asker: str
    code: str = ""
    text: str = ""
    status: int = 409
    marker: Marker | None = None
    outcome: Outcome | None = None


_bus_encoder = msgspec.msgpack.Encoder()
_bus_decoder = msgspec.msgpack.Decoder(RecordAsk | RecordAnswer)


@dataclass(eq=False)
class Unsaved:
    """A finished recording the library has not taken yet."""

    room: Room
    demo_id: str
    title: str
    document: str
    by: uuid.UUID
    events: int
    duration: float
    started: float
    by_name: str
    presenters: list[Connection | None] = field(default_factory=list)


class RecordingService:
    #: The room messages this service takes (``rooms.RoomService``).
    messages: tuple[type, ...] = (RecordControl,)
    #: Stops and markers forwarded from other nodes come here (``rooms.RemoteService``).
    remote_tag = "record"

    def __init__(
        self,
        store: DemoStore,
        *,
        forget: Callable[[str], None] | None = None,
        max_bytes: int = MAX_BYTES,
        retry_seconds: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        slots: RecordSlots | None = None,
        max_seconds: float = MAX_SECONDS,
    ) -> None:
        self.store = store
        #: Called with a demo id once saved (the demo library's cache forgets it).
        self.forget = forget
        self.max_bytes = max_bytes
        self.retry_seconds = retry_seconds
        self.clock = clock
        #: The rooms' recording slots shared by the nodes (None: this process alone).
        self.slots = slots
        self.max_seconds = max_seconds
        #: Rooms whose start waits on the shared slot: no second start here meanwhile.
        self._starting: set[str] = set()
        #: Per room, the release of the slot of a recording just stopped.
        self._releasing: dict[str, asyncio.Task[None]] = {}
        #: Stops and markers forwarded to another node, waiting for its answer.
        self._asked: dict[str, asyncio.Future[RecordAnswer]] = {}
        #: Per room, the last socket command handled through the slot: the next waits
        #: for it (a marker then a stop reach the holding node in that order).
        self._ordered: dict[str, asyncio.Task[Any]] = {}
        self._chores: set[asyncio.Task[Any]] = set()
        #: Recordings in progress, by room id.
        self.active: dict[str, Session] = {}
        #: Recordings waiting to be saved again.
        self.unsaved: list[Unsaved] = []
        #: The latest finished recording of each room, as ``record.state`` says it.
        self.last: dict[str, RecordState] = {}
        self._tasks: set[asyncio.Task[Outcome]] = set()
        self._retry: asyncio.Task[None] | None = None
        self._closing = False

    # -- rooms.RoomService ---------------------------------------------------

    def handle(self, room: Room, conn: Connection, msg: RecordControl) -> None:
        if not can_control_demo(conn.person, conn.role):
            who = a_or_an(conn.person.role.replace("_", " "))
            room.notify(
                conn,
                "error",
                "permission-denied",
                "recording needs an instructor or teaching assistant who can edit this room; "
                f"you are {who} and {conn.role.with_article} here",
            )
            return
        if self.slots is not None and (msg.action == "start" or room.id not in self.active):
            # the shared slot is asked first: perhaps recorded (or startable) elsewhere
            previous = self._ordered.get(room.id)
            task = self._spawn(self._handle_shared(previous, room, conn, msg))
            self._ordered[room.id] = task

            def done(finished: asyncio.Task[Any]) -> None:
                if self._ordered.get(room.id) is finished:
                    del self._ordered[room.id]

            task.add_done_callback(done)
            return
        try:
            if msg.action == "start":
                self.start(room, conn.person, conn, demo=msg.demo, title=msg.title)
            elif msg.action == "stop":
                self.stop(room, conn)
            else:
                self.marker(room, msg.label)
        except RecordRefused as refused:
            room.notify(conn, "error", refused.code, refused.text)

    async def _handle_shared(
        self,
        previous: asyncio.Task[Any] | None,
        room: Room,
        conn: Connection,
        msg: RecordControl,
    ) -> None:
        """A socket's command with the room's slot in Redis: refusals go back to the asker."""
        if previous is not None:
            await asyncio.wait({previous})
        try:
            if msg.action == "start":
                await self.begin(room, conn.person, conn, demo=msg.demo, title=msg.title)
            else:
                await self.command(room, msg.action, msg.label, conn)
        except RecordRefused as refused:
            if conn in room.connections:
                room.notify(conn, "error", refused.code, refused.text)

    def greet(self, room: Room, conn: Connection) -> None:
        session = self.active.get(room.id)
        if session is not None and session.room is room:
            room.send_room(conn, session.state())
        elif self.slots is not None and conn.extension:
            # perhaps a recording on another node: they are told what the slot says
            self._spawn(self.slots.tell_joiner(room, conn, self.active, lambda r: r.state))

    def left(self, room: Room, conn: Connection) -> None:
        """Nothing: a recording outlives a page reload; it ends when the room unloads
        (with several nodes: when nobody is in it on any node, ``_watch_alone``)."""

    async def _watch_alone(self, session: Session) -> None:
        """With several nodes the recording node keeps the room, perhaps with nobody
        on it: the recording ends once the room has been empty on every node for
        the rooms' unload grace, as it would end with the room on one node."""
        room = session.room
        assert room.cluster is not None
        grace = max(room.limits.unload_grace_seconds, 0.1)
        step = min(grace, ALONE_CHECK_SECONDS)
        empty_since: float | None = None
        while self.active.get(room.id) is session:
            await asyncio.sleep(step)
            if room.connections or await room.cluster.elsewhere():
                empty_since = None
                continue
            now = time.monotonic()
            if empty_since is None:
                empty_since = now
            elif now - empty_since >= grace and self.active.get(room.id) is session:
                log.info("recording stopped: nobody in the room anywhere", extra={"room": room.id})
                self.stop(room, None)
                return

    def demo_loaded(self, room: Room) -> None:
        """Recording does not depend on the demo being played."""

    def room_unloaded(self, room: Room) -> None:
        """The registry unloaded the room (everyone left long enough): stop and save."""
        session = self.active.get(room.id)
        if session is not None and session.room is room:
            log.info("recording stopped: room unloaded", extra={"room": room.id})
            self.stop(room, None)

    # -- commands --------------------------------------------------------------

    def state(self, room_id: str) -> RecordState:
        session = self.active.get(room_id)
        if session is not None:
            return session.state()
        return self.last.get(room_id) or RecordState(recording=False)

    async def shared_state(self, room_id: str) -> tuple[RecordState, RecordSlot | None]:
        """``state``, or what the room's slot says when another node records it."""
        if room_id in self.active or self.slots is None:
            return self.state(room_id), None
        record = await self.slots.read(room_id)
        if record is None or record.node == self.slots.node or room_id in self.active:
            return self.state(room_id), None
        return record.state, record

    def start(
        self,
        room: Room,
        person: Person,
        presenter: Connection | None,
        *,
        demo: str | None = None,
        title: str | None = None,
    ) -> Session:
        """Start recording at once, on this node's own rule (``begin`` asks the others too)."""
        self._check(room, demo, title)
        now = datetime.now(UTC)
        return self._open(
            room,
            person,
            presenter,
            demo or self._default_id(room.id, now),
            self._title(room, title, now),
            secrets.token_hex(8),
        )

    async def begin(
        self,
        room: Room,
        person: Person,
        presenter: Connection | None,
        *,
        demo: str | None = None,
        title: str | None = None,
    ) -> Session:
        """Start recording once the room's shared slot is taken (without one: ``start``).

        Refused, as on the node that records, when any node records the room.
        """
        if self.slots is None:
            return self.start(room, person, presenter, demo=demo, title=title)
        slots = self.slots
        self._check(room, demo, title)
        self._starting.add(room.id)  # before the first await: no second start here
        # Kept in memory here until the recording is saved, even with nobody left
        # on this node: everyone being recorded may be on other nodes.
        release_room = room.keep()
        try:
            releasing = self._releasing.get(room.id)
            if releasing is not None:  # a stop here just now: its slot is free first
                await asyncio.wait({releasing})
            now = datetime.now(UTC)
            demo_id = demo or self._default_id(room.id, now)
            full_title = self._title(room, title, now)
            session_id = secrets.token_hex(8)
            started = server_time_ms()

            def record() -> RecordSlot:
                current = self.active.get(room.id)
                if current is not None and current.id == session_id:
                    state = current.state()
                else:
                    state = RecordState(recording=True, by=person.name, started=started)
                return RecordSlot(slots.node, session_id, demo_id, full_title, state)

            holder = await slots.take(room.id, session_id, record)
            if holder is not None:
                raise RecordRefused(
                    "bad-record-command",
                    f"room {room.id!r} is already being recorded (started by {holder.state.by})",
                )
            if demo is not None and any(s.demo_id == demo for s in self.active.values()):
                await slots.release(room.id, session_id)
                raise _demo_taken(demo)
        except BaseException:
            release_room()
            raise
        finally:
            self._starting.discard(room.id)
        session = self._open(room, person, presenter, demo_id, full_title, session_id, started)
        session.release_room = release_room
        session.cap = asyncio.get_running_loop().call_later(
            self.max_seconds, self._too_long, room, session
        )
        if room.cluster is not None:
            self._spawn(self._watch_alone(session))
        return session

    def _check(self, room: Room, demo: str | None, title: str | None) -> None:
        """What refuses a start at once, on this node."""
        current = self.active.get(room.id)
        if current is not None:
            raise RecordRefused(
                "bad-record-command",
                f"room {room.id!r} is already being recorded (started by {current.by.name})",
            )
        if room.id in self._starting:
            raise RecordRefused(
                "bad-record-command", f"room {room.id!r} is already being recorded (starting)"
            )
        if demo is not None and not DEMO_ID.match(demo):
            raise RecordRefused(
                "bad-record-command",
                'demo must be a library id: letters, digits, "-", "_" and "." '
                '(1 to 128 characters, not "." or "..")',
                400,
            )
        if title is not None and not (0 < len(title.strip()) <= MAX_TITLE):
            raise RecordRefused(
                "bad-record-command", f"title must be 1 to {MAX_TITLE} characters", 400
            )
        if demo is not None and any(s.demo_id == demo for s in self.active.values()):
            raise _demo_taken(demo)

    @staticmethod
    def _title(room: Room, title: str | None, now: datetime) -> str:
        if title:
            return title.strip().replace("\x00", "\ufffd")
        return f"Recording of {room.id}, {now:%Y-%m-%d %H:%M} UTC"

    def _open(
        self,
        room: Room,
        person: Person,
        presenter: Connection | None,
        demo_id: str,
        title: str,
        session_id: str,
        started: float | None = None,
    ) -> Session:
        """The recording begins: the recorder on the room's taps, everyone told."""
        loop = asyncio.get_running_loop()
        recorder = Recorder(
            room.document.doc.get_update(),
            clock=self.clock,
            max_bytes=self.max_bytes,
            on_full=lambda: loop.call_soon(self._full, room),
        )
        session = Session(
            room=room,
            recorder=recorder,
            demo_id=demo_id,
            title=title,
            by=person,
            started=started if started is not None else server_time_ms(),
            presenter=presenter,
            id=session_id,
        )
        self.active[room.id] = session
        room.taps.append(recorder)
        room.broadcast_room(session.state())
        log.info(
            "recording started",
            extra={"room": room.id, "demo": demo_id, "by": str(person.user_id)},
        )
        return session

    def marker(self, room: Room, label: str | None) -> Marker:
        session = self.active.get(room.id)
        if session is None:
            raise RecordRefused("bad-record-command", "this room is not being recorded")
        label = _check_label(label)
        if not label:
            count = sum(isinstance(e, MarkerEvent) for e in session.recorder.events)
            label = f"Marker {count + 1}"
        message = Marker(t=session.recorder.marker(label), label=label)
        room.broadcast_room(message)
        return message

    def stop(self, room: Room, presenter: Connection | None) -> asyncio.Task[Outcome]:
        """End the recording now; the task saves it. Everyone is told at once (with a
        shared slot: once the slot is free, a moment later)."""
        session = self.active.get(room.id)
        if session is None or session.room is not room:
            raise RecordRefused("bad-record-command", "this room is not being recorded")
        del self.active[room.id]
        recorder = session.recorder
        if recorder in room.taps:
            room.taps.remove(recorder)
        recorder.stop()
        if session.cap is not None:
            session.cap.cancel()
        loop = asyncio.get_running_loop()
        if self.slots is None:
            self._tell_stopped(session)
            task = loop.create_task(self._save(session, presenter))
        else:
            release = loop.create_task(self.slots.release(room.id, session.id))
            self._releasing[room.id] = release
            release.add_done_callback(lambda done: self._released(room.id, done))
            task = loop.create_task(self._finish(session, presenter, release))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _tell_stopped(self, session: Session) -> None:
        session.room.broadcast_room(
            RecordState(
                recording=False,
                by=session.by.name,
                started=session.started,
                events=len(session.recorder.events),
            )
        )

    def _released(self, room_id: str, release: asyncio.Task[None]) -> None:
        if self._releasing.get(room_id) is release:
            del self._releasing[room_id]

    async def _finish(
        self, session: Session, presenter: Connection | None, release: asyncio.Task[None]
    ) -> Outcome:
        """Stopped with a shared slot: free it before saying so (whoever hears it may
        start again, on any node), save, then let the room go."""
        try:
            await asyncio.wait({release})
            self._tell_stopped(session)
            return await self._save(session, presenter)
        finally:
            session.ended.set()
            if session.release_room is not None:
                session.release_room()

    async def command(
        self,
        room: Room,
        action: Literal["stop", "marker"],
        label: str | None,
        presenter: Connection | None,
    ) -> Marker | Outcome:
        """A stop (answered once saved, or not) or a marker, wherever the room is recorded.

        The asker's permission was checked by the caller; the rest is checked here
        before anything is forwarded to the holding node.
        """
        if room.id not in self.active and self.slots is not None:
            record = await self.slots.read(room.id)
            if room.id not in self.active:
                if record is None or record.node == self.slots.node:
                    raise _not_recorded()
                if action == "marker":
                    _check_label(label)
                answer = await self._ask(room, record, action, label)
                if answer.code:
                    raise RecordRefused(answer.code, answer.text, answer.status)
                if answer.marker is not None:
                    return answer.marker
                if answer.outcome is None:
                    raise RecordRefused("unavailable", "the recording node gave no answer", 503)
                outcome = answer.outcome
                if not outcome.saved and presenter is not None and presenter in room.connections:
                    room.notify(presenter, "error", "unavailable", outcome.error)
                return outcome
        if action == "marker":
            return self.marker(room, label)
        # shielded: an asker that goes away does not cancel the save
        return await asyncio.shield(self.stop(room, presenter))

    async def _ask(
        self, room: Room, record: RecordSlot, action: Literal["stop", "marker"], label: str | None
    ) -> RecordAnswer:
        """Forward to the holding node over the room's bus, and wait for its answer."""
        assert self.slots is not None
        ask = RecordAsk(
            request=secrets.token_hex(8),
            asker=self.slots.node,
            holder=record.node,
            session=record.session,
            action=action,
            label=label,
        )
        future: asyncio.Future[RecordAnswer] = asyncio.get_running_loop().create_future()
        self._asked[ask.request] = future
        try:
            if not room.send_service(self.remote_tag, _bus_encoder.encode(ask)):
                raise _not_recorded()
            timeout = STOP_ANSWER_SECONDS if action == "stop" else MARKER_ANSWER_SECONDS
            try:
                return await asyncio.wait_for(future, timeout)
            except TimeoutError:
                raise RecordRefused(
                    "unavailable",
                    f"the server recording this room did not answer within {timeout:g} s: "
                    "look at the recording state and try again",
                    503,
                ) from None
        finally:
            self._asked.pop(ask.request, None)

    # -- from the same room on other nodes (``rooms.RemoteService``) -------------

    def remote(self, room: Room, payload: bytes) -> None:
        """A stop or marker forwarded to this node, or the answer to one it forwarded."""
        try:
            message = _bus_decoder.decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            metrics.ERRORS.labels(kind="bad_bus_message").inc()
            return
        if self.slots is None:
            return
        if isinstance(message, RecordAnswer):
            future = self._asked.get(message.request)
            if message.asker == self.slots.node and future is not None and not future.done():
                future.set_result(message)
        elif message.holder == self.slots.node:
            self._spawn(self._answer(room, message))

    async def _answer(self, room: Room, ask: RecordAsk) -> None:
        answer = RecordAnswer(request=ask.request, asker=ask.asker)
        session = self.active.get(room.id)
        try:
            if session is None or session.room is not room or session.id != ask.session:
                raise _not_recorded()
            if ask.action == "marker":
                answer.marker = self.marker(room, ask.label)
            else:
                log.info("recording stopped from another node", extra={"room": room.id})
                answer.outcome = await asyncio.shield(self.stop(room, None))
        except RecordRefused as refused:
            answer.code, answer.text, answer.status = refused.code, refused.text, refused.status
        room.send_service(self.remote_tag, _bus_encoder.encode(answer))

    def _too_long(self, room: Room, session: Session) -> None:
        session.cap = None
        if self.active.get(room.id) is not session:
            return
        self._stop_at_limit(room, session, f"time limit ({self.max_seconds / 3600:g} h)")

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(work)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)
        return task

    def _full(self, room: Room) -> None:
        session = self.active.get(room.id)
        if session is None or session.room is not room or not session.recorder.full:
            return
        self._stop_at_limit(room, session, f"size limit ({self.max_bytes // (1024 * 1024)} MiB)")

    def _stop_at_limit(self, room: Room, session: Session, limit: str) -> None:
        """Stop and save at a cap, telling the presenter (if still here) why."""
        text = f"the recording reached its {limit} and was stopped; start another to go on"
        if session.presenter is not None and session.presenter in room.connections:
            room.notify(session.presenter, "warning", "record-full", text)
        log.info("recording stopped: limit", extra={"room": room.id, "limit": limit})
        self.stop(room, session.presenter)

    def _default_id(self, room_id: str, now: datetime) -> str:
        """``rec-<room>-<yyyymmdd-hhmmss>`` (UTC), never one this process used already."""
        stamp = f"{now:%Y%m%d-%H%M%S}"
        base = f"rec-{room_id[: 128 - len(stamp) - 8]}-{stamp}"
        used = {s.demo_id for s in self.active.values()} | {u.demo_id for u in self.unsaved}
        used |= {s.demo for s in self.last.values() if s.demo}
        candidate, n = base, 1
        while candidate in used:
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    # -- saving ------------------------------------------------------------------

    async def _save(self, session: Session, presenter: Connection | None) -> Outcome:
        recorder = session.recorder
        room = session.room
        duration = recorder.duration or 0.0
        outcome = Outcome(
            room=room.id,
            demo=session.demo_id,
            title=session.title,
            events=len(recorder.events),
            duration=duration,
            saved=False,
        )
        try:
            document = await asyncio.to_thread(_build, recorder, session.title)
        except Exception as exc:  # a bug of ours: the recording cannot become a demo
            log.exception("recording could not be built", extra={"room": room.id})
            outcome.error = f"the recording could not be made into a demo: {exc}"
            for conn in (presenter, session.presenter):
                if conn is not None and conn in room.connections:
                    room.notify(conn, "error", "unavailable", outcome.error)
                    break
            return outcome
        item = Unsaved(
            room=room,
            demo_id=session.demo_id,
            title=session.title,
            document=document,
            by=session.by.user_id,
            events=outcome.events,
            duration=duration,
            started=session.started,
            by_name=session.by.name,
            presenters=[presenter, session.presenter],
        )
        error = await self._put(item)
        if error is None:
            outcome.saved = True
        else:
            outcome.error = (
                f"the recording could not be saved as {item.demo_id!r}: {error}; it is kept "
                "and saved again at the next stop or shortly"
            )
            self._keep_unsaved(item, outcome.error)
        if self.unsaved:  # the library answers again: earlier failures go in too
            await self._save_unsaved()
        return outcome

    async def _put(self, item: Unsaved) -> str | None:
        """Write one recording to the library; None when done, else why it failed."""
        try:
            await self.store.put_demo(item.demo_id, item.title, "recording", item.document, item.by)
        except Exception as exc:
            log.warning(
                "recording not saved",
                extra={"room": item.room.id, "demo": item.demo_id, "error": str(exc)},
            )
            return str(exc) or type(exc).__name__
        if self.forget is not None:
            self.forget(item.demo_id)
        state = RecordState(
            recording=False,
            by=item.by_name,
            started=item.started,
            demo=item.demo_id,
            events=item.events,
        )
        self.last[item.room.id] = state
        item.room.broadcast_room(state)
        log.info(
            "recording saved",
            extra={
                "room": item.room.id,
                "demo": item.demo_id,
                "events": item.events,
                "bytes": len(item.document),
            },
        )
        return None

    def _keep_unsaved(self, item: Unsaved, text: str) -> None:
        self.unsaved.append(item)
        while len(self.unsaved) > MAX_UNSAVED:
            lost = self.unsaved.pop(0)
            log.error(
                "unsaved recording dropped: too many waiting",
                extra={"room": lost.room.id, "demo": lost.demo_id},
            )
        for conn in item.presenters:
            if conn is not None and conn in item.room.connections:
                item.room.notify(conn, "error", "unavailable", text)
                break
        if not self._closing and (self._retry is None or self._retry.done()):
            self._retry = asyncio.get_running_loop().create_task(self._retry_loop())

    async def _save_unsaved(self) -> None:
        for item in list(self.unsaved):
            if item not in self.unsaved:  # saved meanwhile by another attempt
                continue
            if await self._put(item) is None and item in self.unsaved:
                self.unsaved.remove(item)

    async def _retry_loop(self) -> None:
        delay = self.retry_seconds
        while self.unsaved:
            await asyncio.sleep(delay)
            await self._save_unsaved()
            delay = min(delay * 2, MAX_RETRY_SECONDS)

    async def close(self) -> None:
        """Shutdown: stop every recording, save it (and what waits), within a bound."""
        self._closing = True
        for session in list(self.active.values()):
            self.stop(session.room, None)
        if self._retry is not None:
            self._retry.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=SHUTDOWN_SAVE_SECONDS)
        if self.unsaved:
            try:
                await asyncio.wait_for(self._save_unsaved(), SHUTDOWN_SAVE_SECONDS)
            except TimeoutError:
                pass
        for item in self.unsaved:
            log.error(
                "recording lost at shutdown: the library could not be written",
                extra={"room": item.room.id, "demo": item.demo_id},
            )
        if self._chores:  # answers to stops forwarded here go out; holds end once saved
            await asyncio.wait(list(self._chores), timeout=CHORES_SECONDS)
        for task in list(self._chores):  # what is left (our own asks) is moot now
            task.cancel()
        for task in list(self._chores):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.slots is not None:
            await self.slots.close()


def _not_recorded() -> RecordRefused:
    return RecordRefused("bad-record-command", "this room is not being recorded")


def _demo_taken(demo: str) -> RecordRefused:
    return RecordRefused(
        "bad-record-command", f"another room is being recorded as {demo!r} right now"
    )


def _check_label(label: str | None) -> str:
    """A marker's label, stripped; checked where the marker is asked for."""
    label = (label or "").strip()
    if len(label) > MAX_LABEL:
        raise RecordRefused(
            "bad-record-command", f"a marker's label is at most {MAX_LABEL} characters", 400
        )
    return label


def _build(recorder: Recorder, title: str) -> str:
    """The stopped recording as the library's JSON document (run in a worker thread)."""
    return msgspec.json.encode(recorder.finish(title)).decode()
