"""The recorder and replay: pycrdt peers, a room document, and a clock the test moves."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
from pycrdt import Assoc, Doc, Map, StickyIndex, Text, TransactionEvent

from crdt import encode_awareness_update
from demos import (
    Recorder,
    dump_demo,
    parse_demo,
    recording_doc_at,
    recording_files_at,
    recording_output_at,
)
from demos.format import Cursor, Marker, Output, Update
from rooms import Person, RoomRole
from rooms.extension import RecordState, RunExit, RunOutput, RunStarted
from server.recordings import RecordingService, RecordRefused


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Peer:
    """A pycrdt client: its local edits come out as updates, as they would on the wire."""

    def __init__(self, client_id: int) -> None:
        self.doc: Doc = Doc(client_id=client_id)
        self.files: Map = self.doc.get("files", type=Map)
        self.out: list[bytes] = []
        self._remote = False
        self.doc.observe(self._local)

    def _local(self, event: TransactionEvent) -> None:
        if not self._remote and event.update != b"\x00\x00":
            self.out.append(event.update)

    def receive(self, update: bytes) -> None:
        self._remote = True
        try:
            self.doc.apply_update(update)
        finally:
            self._remote = False

    def take(self) -> list[bytes]:
        out, self.out = self.out, []
        return out


class Room:
    """The server's side: the room document, and the recorder tapped on its updates."""

    def __init__(self) -> None:
        self.doc: Doc = Doc()
        self.recorder: Recorder | None = None

    def files(self) -> dict[str, str]:
        files = self.doc.get("files", type=Map)
        return {p: str(v) for p, v in files.items() if isinstance(v, Text)}

    def store(self, update: bytes, *peers: Peer) -> None:
        self.doc.apply_update(update)
        if self.recorder is not None:
            self.recorder.update(update)
        for peer in peers:
            peer.receive(update)


def _relpos(text: Text, index: int, assoc: int = 0) -> dict:
    """A relative position as Yjs' ``JSON.stringify(createRelativePositionFromTypeIndex(...))``.

    ``index`` is in UTF-16 units, as CodeMirror and Yjs count.
    """
    type_id = StickyIndex.new(text, 0, Assoc.BEFORE).to_json()["type"]
    units = len(str(text).encode("utf-16-le")) // 2
    if assoc >= 0 and index >= units:
        item = None
    elif assoc < 0 and index == 0:
        item = None
    else:
        item = StickyIndex.new(text, index, Assoc.AFTER if assoc >= 0 else Assoc.BEFORE).to_json()[
            "item"
        ]
    return {"type": type_id, "tname": None, "item": item, "assoc": assoc}


def _awareness(client_id: int, clock: int, state: dict | None) -> bytes:
    body = "null" if state is None else msgspec.json.encode(state).decode()
    return encode_awareness_update([(client_id, clock, body)])


def _session():
    """Two peers that share a starting workspace, and a room recording them."""
    clock = Clock()
    a, b = Peer(1), Peer(2)
    room = Room()
    a.files["main.py"] = Text("print('hello')\n")
    a.files["util.py"] = Text("def add(a, b):\n    return a + b\n")
    for update in a.take():
        room.store(update, b)
    room.recorder = Recorder(room.doc.get_update(), clock=clock, snapshot_seconds=10.0)
    return clock, a, b, room


def test_replay_reproduces_every_moment_of_concurrent_editing():
    clock, a, b, room = _session()
    expected: list[tuple[float, dict[str, str]]] = [(0.0, room.files())]
    for step in range(30):
        clock.now += 0.7
        # concurrent: both edit before either sees the other's change
        main_a = a.files["main.py"]
        main_a.insert(len(str(main_a)), f"print({step})\n")
        util_b = b.files["util.py"]
        util_b.insert(0, f"# {step} é😀\n")
        if step % 5 == 0:
            a.files[f"notes{step}.md"] = Text("notes\n")
        if step % 4 == 3:
            text = str(b.files["main.py"])
            del b.files["main.py"][0 : min(6, len(text))]
        if step == 20:
            del a.files["notes5.md"]
        for update in a.take() + b.take():
            room.store(update, a, b)
        expected.append((round(clock.now - 100.0, 3), room.files()))
    assert a.doc.get_update() and {p: str(v) for p, v in a.files.items()} == room.files()
    recorder = room.recorder
    assert recorder is not None
    demo = recorder.finish("concurrent")
    assert demo.kind == "recording" and demo.files == expected[0][1]
    assert len(demo.recording.snapshots) >= 3  # t=0, then every 10 s of editing, the end
    for t, files in expected:
        assert recording_files_at(demo, t) == files, t
    # through the stored JSON as well
    stored, problems = parse_demo(dump_demo(demo))
    assert not problems and stored is not None
    assert recording_files_at(stored, demo.recording.duration) == room.files()


def test_snapshots_are_periodic_and_seeking_uses_them():
    clock, a, _b, room = _session()
    recorder = room.recorder
    assert recorder is not None
    for _ in range(25):  # 25 edits, one per second
        clock.now += 1.0
        a.files["main.py"].insert(0, "x")
        for update in a.take():
            room.store(update)
    times = [s.t for s in recorder.snapshots]
    assert times[0] == 0.0
    assert times[1:] == [10.0, 20.0], times  # none while nothing changes
    clock.now += 60.0  # idle: no snapshot without a change
    recorder.stop()
    assert [s.t for s in recorder.snapshots][-1] == 85.0  # the stop's own: the end's state
    demo = recorder.finish("periodic")
    # drop every update before the 20 s snapshot: a seek after it must not need them
    demo.recording.events = [e for e in demo.recording.events if e.t >= 20.0]
    assert recording_files_at(demo, 25.0)["main.py"] == "x" * 25 + "print('hello')\n"
    assert demo.recording.duration == 85.0


def test_snapshot_after_many_bytes_and_within_its_budget():
    clock = Clock()
    peer = Peer(7)
    room = Room()
    room.recorder = recorder = Recorder(
        room.doc.get_update(), clock=clock, snapshot_bytes=4096, snapshot_budget=40_000
    )
    peer.files["big.txt"] = Text("")
    for update in peer.take():
        room.store(update)
    for i in range(60):
        clock.now += 0.01
        peer.files["big.txt"].insert(0, f"{i:04d}" * 256)  # about 1 KiB each
        for update in peer.take():
            room.store(update)
    sizes = [len(s.state) for s in recorder.snapshots[1:]]
    assert len(sizes) >= 3  # taken for bytes, well before 10 s
    assert sum(sizes) <= 40_000  # and never past their budget


def test_size_cap_ends_the_recording_consistently():
    clock = Clock()
    peer = Peer(3)
    room = Room()
    full: list[bool] = []
    room.recorder = recorder = Recorder(
        room.doc.get_update(), clock=clock, max_bytes=2000, on_full=lambda: full.append(True)
    )
    kept: dict[str, str] = {}
    for i in range(100):
        clock.now += 0.1
        peer.files[f"f{i}.txt"] = Text("y" * 50)
        for update in peer.take():
            room.store(update)
        if not recorder.full:
            kept = room.files()
    assert recorder.full and full == [True]  # told once
    assert recorder.size <= 2000
    recorder.message(RunOutput(run="r", stream="stdout", data="late", seq=0))
    assert not any(isinstance(e, Output) for e in recorder.events)
    demo = recorder.finish("capped")
    assert recording_files_at(demo, demo.recording.duration) == kept
    assert 0 < len(kept) < 100


def test_run_output_and_markers():
    clock, _a, _b, room = _session()
    recorder = room.recorder
    assert recorder is not None
    clock.now += 1
    recorder.marker("intro")
    clock.now += 1
    recorder.message(RunStarted(run="r1", by="Ines", language="python", entry="main.py", at=0))
    recorder.message(RunOutput(run="r1", stream="stdout", data="hello\n", seq=0))
    clock.now += 0.5
    recorder.message(RunOutput(run="r1", stream="stderr", data="oops\n", seq=1))
    recorder.message(
        RunExit(
            run="r1",
            status="ok",
            exit_code=0,
            signal=None,
            wall_ms=1,
            cpu_ms=1,
            peak_memory_bytes=0,
            output_truncated=False,
            message="",
        )
    )
    recorder.message(RecordState(recording=True))  # not part of the recording
    clock.now += 1
    recorder.message(RunStarted(run="r2", by="Ines", language="python", entry="main.py", at=0))
    recorder.message(RunOutput(run="r2", stream="stdout", data="again\n", seq=0))
    demo = recorder.finish("output")
    markers = [(e.t, e.label) for e in demo.recording.events if isinstance(e, Marker)]
    assert markers == [(1.0, "intro"), (2.0, "run main.py"), (3.5, "run main.py (2)")]
    outputs = [
        (e.t, e.stream, e.data, e.run) for e in demo.recording.events if isinstance(e, Output)
    ]
    assert outputs == [
        (2.0, "stdout", "hello\n", "r1"),
        (2.5, "stderr", "oops\n", "r1"),
        (3.5, "stdout", "again\n", "r2"),
    ]
    assert recording_output_at(demo, 2.0) == "hello\n"
    assert recording_output_at(demo, 10) == "hello\noops\nagain\n"
    assert recording_output_at(demo, 10, run="r1", streams=("stdout",)) == "hello\n"
    assert len(demo.recording.events) == 6


def test_cursors_become_character_offsets_in_the_right_file():
    clock, a, b, room = _session()
    recorder = room.recorder
    assert recorder is not None
    a.files["uni.py"] = Text("é😀abc\n")
    for update in a.take():
        room.store(update, b)
    util = b.files["util.py"]
    uni = b.files["uni.py"]
    clock.now += 1
    # a selection of "add" in util.py; a caret after the emoji in uni.py (UTF-16 index 3)
    state = {
        "user": {"name": "Bea"},
        "cursor": {"anchor": _relpos(util, 4), "head": _relpos(util, 7)},
    }
    recorder.awareness(_awareness(2, 1, state))
    recorder.awareness(_awareness(2, 2, state))  # the same again: not recorded twice
    clock.now += 1
    caret = _relpos(uni, 3)
    recorder.awareness(
        _awareness(9, 1, {"user": {"name": "Al"}, "cursor": {"anchor": caret, "head": caret}})
    )
    end = _relpos(uni, 7)  # the end of the file: no item, assoc 0
    recorder.awareness(
        _awareness(9, 2, {"user": {"name": "Al"}, "cursor": {"anchor": end, "head": end}})
    )
    before = _relpos(uni, 3, -1)  # assoc -1: sticks to the character before (the emoji)
    recorder.awareness(_awareness(9, 3, {"cursor": {"anchor": before, "head": before}}))
    recorder.awareness(_awareness(9, 4, {"user": {"name": "Al"}}))  # no cursor: nothing
    recorder.awareness(_awareness(9, 5, None))
    cursors = [
        (e.t, e.user, e.file, e.anchor, e.head) for e in recorder.events if isinstance(e, Cursor)
    ]
    assert cursors == [
        (1.0, "Bea", "util.py", 4, 7),
        (2.0, "Al", "uni.py", 2, 2),
        (2.0, "Al", "uni.py", 6, 6),
        (2.0, "client 9", "uni.py", 2, 2),
    ]
    assert str(b.files["uni.py"])[:2] == "é😀"


def test_a_cursor_on_text_not_stored_yet_waits_for_it():
    clock, a, b, room = _session()
    recorder = room.recorder
    assert recorder is not None
    a.files["main.py"].insert(0, "abc")
    pending = a.take()
    # the awareness arrives before the update is committed and applied
    pos = _relpos(a.files["main.py"], 1)
    clock.now += 1
    recorder.awareness(_awareness(1, 1, {"cursor": {"anchor": pos, "head": pos}}))
    assert not any(isinstance(e, Cursor) for e in recorder.events)
    clock.now += 1
    for update in pending:
        room.store(update, b)
    cursors = [e for e in recorder.events if isinstance(e, Cursor)]
    assert [(c.t, c.file, c.anchor) for c in cursors] == [(2.0, "main.py", 1)]


def test_bogus_cursors_are_skipped():
    _clock, a, _b, room = _session()
    recorder = room.recorder
    assert recorder is not None
    main = a.files["main.py"]
    util_pos = _relpos(a.files["util.py"], 2)
    wrong_file = dict(util_pos, type=_relpos(main, 0)["type"])  # util.py's char, main.py's type
    for cursor in (
        {"anchor": wrong_file, "head": wrong_file},
        {"anchor": {"type": {"client": 99, "clock": 0}, "item": None, "assoc": 0}, "head": None},
        {"anchor": "nonsense", "head": 3},
        {"anchor": _relpos(main, 1), "head": util_pos},  # two files
    ):
        recorder.awareness(_awareness(5, 1, {"cursor": cursor}))
    recorder.awareness(b"\xff\xff")  # not an awareness update
    assert not any(isinstance(e, Cursor) for e in recorder.events)


def test_clock_going_back_keeps_times_in_order():
    clock, a, _b, room = _session()
    recorder = room.recorder
    assert recorder is not None
    clock.now += 5
    a.files["main.py"].insert(0, "1")
    for update in a.take():
        room.store(update)
    clock.now -= 3
    recorder.marker("back")
    times = [e.t for e in recorder.events]
    assert times == sorted(times) == [5.0, 5.0]
    assert isinstance(recorder.events[0], Update)
    assert not parse_demo(dump_demo(recorder.finish("t")))[1]


def test_replay_without_snapshots_starts_from_the_files():
    data = (
        b'{"format": "opencode-live/demo", "version": 1, "title": "t", "files": {"a.py": "x"},'
        b' "recording": {"events": [{"type": "output", "t": 1, "stream": "stdout", "data": "hi"}]}}'
    )
    demo, problems = parse_demo(data)
    assert demo is not None and not problems
    assert recording_files_at(demo, 5) == {"a.py": "x"}
    assert recording_output_at(demo, 0.5) == "" and recording_output_at(demo, 1) == "hi"
    assert isinstance(recording_doc_at(demo, 0), Doc)


# -- the recording service, with a room and a library that the test controls ----------------


class FakeDocument:
    def __init__(self, doc: Doc) -> None:
        self.doc = doc


class FakeRoom:
    """What the service uses of ``rooms.Room``: its document, taps, people and messages."""

    def __init__(self, room_id: str) -> None:
        self.id = room_id
        self.doc: Doc = Doc()
        self.document = FakeDocument(self.doc)
        self.taps: list = []
        self.connections: dict = {}
        self.broadcasts: list = []
        self.notices: list[tuple[object, str, str, str]] = []
        self.cluster = None
        #: ``Room.keep`` holds not yet released.
        self.kept = 0

    def keep(self):
        self.kept += 1
        released = []

        def release() -> None:
            if not released:
                released.append(True)
                self.kept -= 1

        return release

    def broadcast_room(self, message) -> None:
        self.broadcasts.append(message)
        for tap in self.taps:
            tap.message(message)

    def notify(self, conn, level: str, code: str, text: str) -> None:
        self.notices.append((conn, level, code, text))

    def send_room(self, conn, message) -> None:
        self.notices.append((conn, "message", type(message).__name__, ""))

    def edit(self, peer: Peer) -> None:
        for update in peer.take():
            self.doc.apply_update(update)
            for tap in list(self.taps):
                tap.update(update)


class FlakyLibrary:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.saved: dict[str, tuple[str, str, str]] = {}

    async def put_demo(self, demo_id, title, kind, document, by) -> bool:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("the database is away")
        self.saved[demo_id] = (title, kind, document)
        return True


def _staff():
    class Conn:
        person = Person(user_id=uuid.uuid4(), name="Ines", role="instructor")
        role = RoomRole.EDITOR

    return Conn()


async def test_a_failed_save_is_told_kept_and_retried():
    library = FlakyLibrary(failures=2)
    forgotten: list[str] = []
    service = RecordingService(library, forget=forgotten.append, retry_seconds=0.05)
    room = FakeRoom("r1")
    conn = _staff()
    room.connections[conn] = None
    peer = Peer(11)
    service.start(room, conn.person, conn, demo="kept", title="Kept")  # type: ignore[arg-type]
    assert len(room.taps) == 1
    peer.files["a.py"] = Text("print(1)\n")
    room.edit(peer)
    outcome = await service.stop(room, conn)  # type: ignore[arg-type]
    assert not room.taps
    assert not outcome.saved and "database is away" in outcome.error
    assert [(n[1], n[2]) for n in room.notices] == [("error", "unavailable")]
    assert "kept" in room.notices[0][3]
    assert [u.demo_id for u in service.unsaved] == ["kept"]
    for _ in range(200):  # retried on a timer until the library takes it
        if not service.unsaved:
            break
        await asyncio.sleep(0.02)
    assert not service.unsaved and forgotten == ["kept"]
    title, kind, document = library.saved["kept"]
    assert (title, kind) == ("Kept", "recording")
    demo, problems = parse_demo(document)
    assert demo is not None and not problems
    assert recording_files_at(demo, demo.recording.duration) == {"a.py": "print(1)\n"}
    assert room.broadcasts[-1] == RecordState(
        recording=False, by="Ines", started=room.broadcasts[0].started, demo="kept", events=1
    )


async def test_the_next_stop_saves_what_failed_before_and_the_cap_stops_recording():
    library = FlakyLibrary(failures=1)
    service = RecordingService(library, retry_seconds=3600, max_bytes=300)
    room = FakeRoom("r2")
    conn = _staff()
    room.connections[conn] = None
    service.start(room, conn.person, conn, demo="first")  # type: ignore[arg-type]
    assert not (await service.stop(room, conn)).saved  # type: ignore[arg-type]
    session = service.start(room, conn.person, conn)  # type: ignore[arg-type]
    assert session.demo_id.startswith("rec-r2-")
    peer = Peer(12)
    for i in range(20):  # over the 300-byte cap: stopped and saved by itself
        peer.files[f"f{i}.py"] = Text("x" * 40)
        room.edit(peer)
    await _until(lambda: "r2" not in service.active and not service._tasks)
    assert ("record-full" in [n[2] for n in room.notices]) and not room.taps
    assert set(library.saved) == {"first", session.demo_id}
    assert not service.unsaved


async def _until(check, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def test_two_rooms_cannot_record_into_one_demo_and_ids_are_checked():
    library = FlakyLibrary(failures=0)
    service = RecordingService(library)
    conn = _staff()
    one, two = FakeRoom("one"), FakeRoom("two")
    service.start(one, conn.person, None, demo="same")
    for room, demo, title, words in (
        (two, "same", None, "another room"),
        (one, "other", None, "already being recorded"),
        (two, "../up", None, "library id"),
        (two, "ok", "   ", "title"),
    ):
        try:
            service.start(room, conn.person, None, demo=demo, title=title)
        except RecordRefused as refused:
            assert refused.code == "bad-record-command" and words in refused.text
        else:
            raise AssertionError(f"{demo!r} in {room.id} was accepted")
    assert list(service.active) == ["one"] and not two.taps
    await service.close()  # shutdown saves what is being recorded
    assert not service.active and not one.taps and list(library.saved) == ["same"]
