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
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import msgspec

from demos.format import Marker as MarkerEvent
from demos.recorder import MAX_BYTES, Recorder
from rooms import Connection, Person, Room, can_control_demo
from rooms.access import a_or_an
from rooms.extension import Marker, RecordControl, RecordState, server_time_ms

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

    def __init__(
        self,
        store: DemoStore,
        *,
        forget: Callable[[str], None] | None = None,
        max_bytes: int = MAX_BYTES,
        retry_seconds: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        #: Called with a demo id once saved (the demo library's cache forgets it).
        self.forget = forget
        self.max_bytes = max_bytes
        self.retry_seconds = retry_seconds
        self.clock = clock
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
        try:
            if msg.action == "start":
                self.start(room, conn.person, conn, demo=msg.demo, title=msg.title)
            elif msg.action == "stop":
                self.stop(room, conn)
            else:
                self.marker(room, msg.label)
        except RecordRefused as refused:
            room.notify(conn, "error", refused.code, refused.text)

    def greet(self, room: Room, conn: Connection) -> None:
        session = self.active.get(room.id)
        if session is not None and session.room is room:
            room.send_room(conn, session.state())

    def left(self, room: Room, conn: Connection) -> None:
        """Nothing: a recording outlives a page reload; it ends when the room unloads."""

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

    def start(
        self,
        room: Room,
        person: Person,
        presenter: Connection | None,
        *,
        demo: str | None = None,
        title: str | None = None,
    ) -> Session:
        current = self.active.get(room.id)
        if current is not None:
            raise RecordRefused(
                "bad-record-command",
                f"room {room.id!r} is already being recorded (started by {current.by.name})",
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
            raise RecordRefused(
                "bad-record-command", f"another room is being recorded as {demo!r} right now"
            )
        now = datetime.now(UTC)
        demo_id = demo or self._default_id(room.id, now)
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
            title=title.strip().replace("\x00", "\ufffd")
            if title
            else f"Recording of {room.id}, {now:%Y-%m-%d %H:%M} UTC",
            by=person,
            started=server_time_ms(),
            presenter=presenter,
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
        label = (label or "").strip()
        if len(label) > MAX_LABEL:
            raise RecordRefused(
                "bad-record-command", f"a marker's label is at most {MAX_LABEL} characters", 400
            )
        if not label:
            count = sum(isinstance(e, MarkerEvent) for e in session.recorder.events)
            label = f"Marker {count + 1}"
        message = Marker(t=session.recorder.marker(label), label=label)
        room.broadcast_room(message)
        return message

    def stop(self, room: Room, presenter: Connection | None) -> asyncio.Task[Outcome]:
        """End the recording now (everyone is told at once); the task saves it."""
        session = self.active.get(room.id)
        if session is None or session.room is not room:
            raise RecordRefused("bad-record-command", "this room is not being recorded")
        del self.active[room.id]
        recorder = session.recorder
        if recorder in room.taps:
            room.taps.remove(recorder)
        recorder.stop()
        room.broadcast_room(
            RecordState(
                recording=False,
                by=session.by.name,
                started=session.started,
                events=len(recorder.events),
            )
        )
        task = asyncio.get_running_loop().create_task(self._save(session, presenter))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _full(self, room: Room) -> None:
        session = self.active.get(room.id)
        if session is None or session.room is not room or not session.recorder.full:
            return
        text = (
            f"the recording reached its size limit ({self.max_bytes // (1024 * 1024)} MiB) "
            "and was stopped; start another to go on"
        )
        if session.presenter is not None and session.presenter in room.connections:
            room.notify(session.presenter, "warning", "record-full", text)
        log.info("recording stopped: size limit", extra={"room": room.id})
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


def _build(recorder: Recorder, title: str) -> str:
    """The stopped recording as the library's JSON document (run in a worker thread)."""
    return msgspec.json.encode(recorder.finish(title)).decode()
