"""Recording a live room into a recording demo: pure logic, no I/O.

A :class:`Recorder` listens to a room the way its people see it (it has the
shape of ``rooms.RoomTap``): every stored Yjs update, the extension messages
broadcast to the room (run output, runs starting) and awareness updates
(cursors). It timestamps each relative to its own start and builds a
``recording`` timeline (``demos.format``).

Why the room's own update stream and not a diff of the files now and then: the
updates are exactly what every client applied, so replaying them reproduces the
workspace byte for byte, concurrent edits and all, and a viewer's editor can
apply them like live edits.

The recorder keeps its own copy of the document (started from the room's
state) for two things: periodic snapshots of the whole state, so a seek starts
from the nearest one instead of replaying everything since the start, and
turning y-codemirror cursors (Yjs relative positions) into file offsets.

It never grows without bound: the bytes of updates, output and cursors are
capped; the first event over the cap ends the recording (nothing after it is
kept, so what was recorded stays consistent) and ``on_full`` is called once.
Snapshots have their own budget (the same size by default).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec
from pycrdt import Assoc, Doc, Map, StickyIndex, Text

from crdt import FILES, decode_awareness_update
from crdt.document import decode_state_vector

from .format import (
    FORMAT,
    VERSION,
    Cursor,
    Demo,
    DemoError,
    Event,
    Marker,
    Output,
    Recording,
    Snapshot,
    Update,
    check_path,
    validate_demo,
)

#: Bytes of updates, output and cursor events a recording may hold (about 16 MiB).
MAX_BYTES = 16 * 1024 * 1024
#: A snapshot is taken this many seconds after the previous one, if anything changed...
SNAPSHOT_SECONDS = 10.0
#: ...or once this many bytes of updates came in since it, whichever is first.
SNAPSHOT_BYTES = 256 * 1024
#: Roughly what a cursor event weighs in the stored JSON, for the size cap.
CURSOR_BYTES = 64
#: How many updates a cursor that names text not yet in the document waits for.
CURSOR_RETRIES = 3

_FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit)
_json = msgspec.json.Decoder()


class _NotYet(Exception):
    """A relative position names text that has not reached the document yet."""


class Recorder:
    """Records one room from the moment it is made; ``finish`` turns it into a demo.

    ``state`` is the room document's whole state at the start (``doc.get_update()``);
    ``clock`` returns seconds (``time.monotonic`` unless a test injects another).
    """

    def __init__(
        self,
        state: bytes,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int = MAX_BYTES,
        snapshot_seconds: float = SNAPSHOT_SECONDS,
        snapshot_bytes: int = SNAPSHOT_BYTES,
        snapshot_budget: int | None = None,
        on_full: Callable[[], None] | None = None,
    ) -> None:
        self._clock = clock
        self._start = clock()
        self.max_bytes = max_bytes
        self.snapshot_seconds = snapshot_seconds
        self.snapshot_bytes = snapshot_bytes
        #: Bytes all snapshots after the first may take together.
        self.snapshot_budget = max_bytes if snapshot_budget is None else snapshot_budget
        self._on_full = on_full
        self._doc: Doc = Doc()
        if state:
            self._doc.apply_update(state)
        self._files: Map = self._doc.get(FILES, type=Map)
        #: The workspace at the start (paths a demo file cannot hold are left out).
        self.files: dict[str, str] = {
            path: _clean(str(value))
            for path, value in self._files.items()
            if isinstance(value, Text) and check_path(path) is None and "\x00" not in path
        }
        self.events: list[Event] = []
        self.snapshots: list[Snapshot] = [Snapshot(t=0.0, state=self._doc.get_update())]
        #: Bytes counted against ``max_bytes`` so far.
        self.size = 0
        #: The cap was reached: nothing more is recorded.
        self.full = False
        self.stopped = False
        self.duration: float | None = None
        self._last_t = 0.0
        self._snapshot_t = 0.0
        self._since_snapshot = 0
        self._updates_since_snapshot = 0
        self._snapshot_total = 0
        self._snapshots_spent = False
        self._version = 0
        self._run_labels: dict[str, int] = {}
        # cursors: type id -> path (rebuilt when the document changed), the last
        # cursor recorded per awareness client, and cursors waiting for their text
        self._types: dict[tuple[int, int], str] = {}
        self._types_version = -1
        self._state_vector: tuple[int, dict[int, int]] = (-1, {})
        self._cursors: dict[int, tuple[str, str, int, int]] = {}
        self._pending: dict[int, tuple[str, dict[str, Any], int]] = {}

    # -- time and size ------------------------------------------------------

    def now(self) -> float:
        """Seconds since the start, never less than the last event's (the clock may jump)."""
        t = max(self._clock() - self._start, self._last_t)
        self._last_t = t
        return round(t, 3)

    def _admit(self, size: int) -> bool:
        """Count ``size`` bytes against the cap; False (and ``on_full``, once) past it."""
        if self.stopped or self.full:
            return False
        if self.size + size > self.max_bytes:
            self.full = True
            if self._on_full is not None:
                self._on_full()
            return False
        self.size += size
        return True

    # -- rooms.RoomTap --------------------------------------------------------

    def update(self, update: bytes) -> None:
        """A stored update, as applied to the room document: an ``update`` event."""
        if not self._admit(len(update)):
            return
        try:
            self._doc.apply_update(update)
        except _FATAL:
            raise
        except BaseException:  # the room applied it already; ours cannot differ
            pass
        self._version += 1
        self.events.append(Update(t=self.now(), update=update))
        self._since_snapshot += len(update)
        self._updates_since_snapshot += 1
        self._maybe_snapshot()
        if self._pending:
            self._retry_cursors()

    def message(self, message: object) -> None:
        """Run output becomes ``output`` events; a run starting becomes a marker."""
        # By its wire type (``run.output``...): demos does not import rooms.
        config = getattr(type(message), "__struct_config__", None)
        kind = getattr(config, "tag", None)
        if kind == "run.output":
            data: str = message.data  # type: ignore[attr-defined]
            if data and self._admit(len(data.encode("utf-8", "replace"))):
                self.events.append(
                    Output(
                        t=self.now(),
                        stream=message.stream,  # type: ignore[attr-defined]
                        data=_clean(data),
                        run=message.run,  # type: ignore[attr-defined]
                    )
                )
        elif kind == "run.started":
            entry: str = message.entry  # type: ignore[attr-defined]
            label = f"run {entry}" if entry else "run"
            seen = self._run_labels.get(label, 0) + 1
            self._run_labels[label] = seen
            self.marker(label if seen == 1 else f"{label} ({seen})")

    def awareness(self, update: bytes) -> None:
        """Cursor moves (y-codemirror's ``cursor: {anchor, head}``) as ``cursor`` events."""
        if self.stopped or self.full:
            return
        try:
            entries = decode_awareness_update(update)
        except Exception:
            return
        for client_id, _clock, state in entries:
            self._pending.pop(client_id, None)
            try:
                parsed = _json.decode(state)
            except msgspec.DecodeError:
                continue
            if not isinstance(parsed, dict):
                continue
            cursor = parsed.get("cursor")
            if not isinstance(cursor, dict):
                continue
            self._cursor(client_id, _user_of(client_id, parsed), cursor, CURSOR_RETRIES)

    # -- markers and the end ----------------------------------------------------

    def marker(self, label: str) -> float:
        """Drop a marker (a chapter to seek to) now; returns its time."""
        t = self.now()
        if self._admit(len(label.encode("utf-8")) + 32):
            self.events.append(Marker(t=t, label=_clean(label)))
        return t

    @property
    def elapsed(self) -> float:
        return (
            self.duration
            if self.duration is not None
            else round(max(self._clock() - self._start, self._last_t), 3)
        )

    def stop(self) -> None:
        """End the recording: its length, and a last snapshot so seeking to the end is quick."""
        if self.stopped:
            return
        self.duration = self.now()
        if self._updates_since_snapshot:
            state = self._doc.get_update()
            self.snapshots.append(Snapshot(t=self.duration, state=state))
        self.stopped = True
        self._pending.clear()

    def finish(self, title: str, description: str = "") -> Demo:
        """The recording as a validated demo (``kind`` "recording").

        Safe to call off the event loop once stopped: it only reads what was kept.
        """
        self.stop()
        demo = Demo(
            format=FORMAT,
            version=VERSION,
            title=title,
            description=description,
            files=dict(self.files),
            recording=Recording(
                events=list(self.events), snapshots=list(self.snapshots), duration=self.duration
            ),
        )
        problems = validate_demo(demo, "recording")
        if problems:
            raise DemoError(problems)
        return demo

    # -- snapshots ---------------------------------------------------------------

    def _maybe_snapshot(self) -> None:
        if self._snapshots_spent:
            return
        t = self._last_t
        due = self._since_snapshot >= self.snapshot_bytes or (
            t - self._snapshot_t >= self.snapshot_seconds
        )
        if not due:
            return
        state = self._doc.get_update()
        if self._snapshot_total + len(state) > self.snapshot_budget:
            # Spent: seeks after this start from an earlier snapshot (slower, still
            # right), and the whole state is not encoded again after every update.
            self._snapshots_spent = True
            return
        self._snapshot_total += len(state)
        self.snapshots.append(Snapshot(t=round(t, 3), state=state))
        self._snapshot_t = t
        self._since_snapshot = 0
        self._updates_since_snapshot = 0

    # -- cursors -----------------------------------------------------------------

    def _cursor(self, client_id: int, user: str, cursor: dict[str, Any], tries: int) -> None:
        try:
            anchor = self._resolve(cursor.get("anchor"))
            head = self._resolve(cursor.get("head"))
        except _NotYet:
            if tries > 0:
                self._pending[client_id] = (user, cursor, tries - 1)
            return
        if anchor is None or head is None or anchor[0] != head[0] or "\x00" in anchor[0]:
            return
        seen = (user, anchor[0], anchor[1], head[1])
        if self._cursors.get(client_id) == seen:
            return
        if not self._admit(CURSOR_BYTES + len(user) + len(anchor[0])):
            return
        self._cursors[client_id] = seen
        self.events.append(
            Cursor(t=self.now(), user=user, file=anchor[0], anchor=anchor[1], head=head[1])
        )

    def _retry_cursors(self) -> None:
        pending, self._pending = self._pending, {}
        for client_id, (user, cursor, tries) in pending.items():
            self._cursor(client_id, user, cursor, tries)

    def _resolve(self, position: object) -> tuple[str, int] | None:
        """A Yjs relative position (JSON) as (file, character offset); None if it is not one.

        Yjs writes ``{type: {client, clock}, tname, item: {client, clock} | null, assoc}``:
        ``type`` names the ``Y.Text`` (the map entry holding it), ``item`` the
        character the position sticks to (null: the end, or the start when
        ``assoc`` < 0). yrs answers offsets in UTF-16 code units; they are
        turned into Python string offsets (code points). An ``item`` that is
        not in the document yet raises ``_NotYet``.
        """
        if not isinstance(position, dict):
            return None
        type_id = _id_of(position.get("type"))
        if type_id is None:
            return None
        path = self._path_of(type_id)
        if path is None:
            return None
        text = self._files.get(path)
        if not isinstance(text, Text):
            return None
        assoc = position.get("assoc", 0)
        if not isinstance(assoc, int):
            return None
        item = position.get("item")
        content = str(text)
        if item is None:
            return path, (len(content) if assoc >= 0 else 0)
        item_id = _id_of(item)
        if item_id is None:
            return None
        client, clock = item_id
        if clock >= self._known_clock(client):
            raise _NotYet
        units = _utf16_offset(text, content, item_id, assoc)
        if units is None:
            return None
        return path, _code_points(content, units)

    def _path_of(self, type_id: tuple[int, int]) -> str | None:
        if self._types_version != self._version:
            self._types = {}
            for path, value in self._files.items():
                if isinstance(value, Text):
                    found = _id_of(StickyIndex.new(value, 0, Assoc.BEFORE).to_json().get("type"))
                    if found is not None:
                        self._types[found] = path
            self._types_version = self._version
        return self._types.get(type_id)

    def _known_clock(self, client: int) -> int:
        version, vector = self._state_vector
        if version != self._version:
            vector = decode_state_vector(self._doc.get_state())
            self._state_vector = (self._version, vector)
        return vector.get(client, 0)


def _clean(text: str) -> str:
    """Text without NUL: Postgres' ``jsonb`` (the demo library) refuses ``\\u0000``, and a
    program that prints one must not make its recording unsaveable."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _id_of(value: object) -> tuple[int, int] | None:
    if not isinstance(value, dict):
        return None
    client, clock = value.get("client"), value.get("clock")
    if isinstance(client, int) and isinstance(clock, int) and client >= 0 and clock >= 0:
        return client, clock
    return None


def _user_of(client_id: int, state: dict[str, Any]) -> str:
    user = state.get("user")
    if isinstance(user, dict) and isinstance(user.get("name"), str) and user["name"]:
        return _clean(str(user["name"])[:100])
    return f"client {client_id}"


def _utf16_offset(text: Text, content: str, item: tuple[int, int], assoc: int) -> int | None:
    """Where ``item`` is in ``text`` (UTF-16 units), checked to be a live character of it.

    yrs finds the character anywhere in the document; asking ``text`` for the
    character at the offset it answered and comparing ids tells a character of
    this file from one of another file (or one deleted since), which are skipped.
    """
    client, clock = item
    data = {"item": {"client": client, "clock": clock}, "assoc": assoc}
    try:
        offset = StickyIndex.from_json(data, text).get_index()
        if not 0 <= offset <= _utf16_len(content):
            return None
        if assoc >= 0:
            if offset == _utf16_len(content):
                return None
            check = StickyIndex.new(text, offset, Assoc.AFTER).to_json()
        else:
            if offset < 1:
                return None
            check = StickyIndex.new(text, offset, Assoc.BEFORE).to_json()
    except _FATAL:
        raise
    except BaseException:  # a yrs panic on an id it cannot place
        return None
    return offset if _id_of(check.get("item")) == item else None


def _utf16_len(content: str) -> int:
    if content.isascii():
        return len(content)
    return len(content.encode("utf-16-le", "surrogatepass")) // 2


def _code_points(content: str, units: int) -> int:
    """A UTF-16 offset into ``content`` as an offset in code points (Python indices)."""
    if content.isascii():
        return min(units, len(content))
    encoded = content.encode("utf-16-le", "surrogatepass")
    return len(encoded[: 2 * units].decode("utf-16-le", "ignore"))
