"""Runs in rooms: "Run" pressed by one person, watched live by everyone in the room.

The room hands its run messages here (it is a ``rooms.RoomService``). A request is
checked in order (role, engine, one run per room, the person's hourly
allowance), the room's current files become an ``executor.Job``, and the
program's output is broadcast as ``run.output`` chunks as it is printed, then
``run.exit``. Anyone who may edit the room can type into the program's
standard input or stop it. A run whose requester leaves an otherwise empty
room is stopped after a short grace, so a page reload does not kill it (with
several nodes, only when nobody is in the room on any node; the run's node keeps
the room loaded meanwhile).

With several nodes (``REDIS_URL``), the one-run-per-room rule holds across
them: the room's run slot lives in Redis (``runslots.RunSlots``), a joiner on
any node is told of the run going on (read from the slot), and typing into or
stopping a run held by another node is checked here and then forwarded to that
node over the room's bus (this service is a ``rooms.RemoteService``). The
hourly allowance is counted across nodes too when the limit is shared
(``sharedlimit.SharedHourlyLimit``).

A run that really ran (not one refused or that could not start) becomes a
``RunFinished`` progress event for its requester, keyed by the run's id, on
the application's ``ProgressFeed``; starting one marks the requester active
in the room (pairing minutes count active people only).
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import secrets
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath

import msgspec

from executor import (
    Executor,
    ExecutorError,
    Job,
    JobError,
    LanguageSpec,
    Limits,
    OutputChunk,
    Result,
    Run,
)
from progress import RunFinished
from rooms import Connection, Person, Room, can_run, metrics
from rooms.extension import (
    RunExit,
    RunInput,
    RunLanguage,
    RunLanguages,
    RunMessage,
    RunOutput,
    RunRequest,
    RunStarted,
    RunStop,
    server_time_ms,
)

from .progressfeed import ProgressFeed
from .ratelimit import HourlyLimit, retry_after_header
from .runslots import RunSlots

log = logging.getLogger("opencode_live.server")

#: Seconds a run goes on after its requester left a room nobody else is in.
ORPHAN_GRACE_SECONDS = 3.0
#: Longest wait for the room's pending updates to be stored before a run reads its files.
SETTLE_SECONDS = 5.0

#: What goes over the bus to the node holding a run: the asker's message as it came.
RunCommand = RunInput | RunStop
_command_encoder = msgspec.msgpack.Encoder()
_command_decoder = msgspec.msgpack.Decoder(RunCommand)


class RunRefused(Exception):
    """A run request turned down; ``code`` is the notice code, the text says why."""

    def __init__(self, code: str, text: str, retry_after: float | None = None) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.retry_after = retry_after


@dataclass
class RoomRun:
    id: str
    room: Room
    by: Person
    language: str
    entry: str
    started_at: float
    requester: Connection | None
    stdin: str = ""
    #: The executor's handle, once the program started.
    handle: Run | None = None
    seq: int = 0
    decoders: dict[str, codecs.IncrementalDecoder] = field(default_factory=dict)
    orphan_timer: asyncio.TimerHandle | None = None
    #: For an HTTP request: the output, also kept to answer with (bounded by the run's cap).
    collected: list[tuple[str, str]] | None = None
    #: Lets the room be unloaded again (``Room.keep``), once the run is over.
    release_room: Callable[[], None] | None = None
    #: Output that came before ``run.started`` went out (held so it never precedes it).
    early: list[tuple[str, str]] | None = field(default_factory=list)

    def started_message(self) -> RunStarted:
        return RunStarted(
            run=self.id,
            by=self.by.name,
            language=self.language,
            entry=self.entry,
            at=self.started_at,
        )


def choose_entry(
    files: dict[str, str], entry: str | None, languages: Mapping[str, LanguageSpec]
) -> tuple[str, str]:
    """The file to run and its language, from the language specs' own default entries
    and extensions (a language added as a spec file is runnable here too)."""
    by_suffix = {suffix: spec.name for spec in languages.values() for suffix in spec.extensions}
    if entry is not None:
        if entry not in files:
            raise RunRefused("bad-run-request", f"there is no file {entry!r} in this room")
        candidates = [entry]
    else:
        defaults = sorted(spec.entry for spec in languages.values() if spec.entry in files)
        candidates = defaults + sorted(files)
    for name in candidates:
        language = by_suffix.get(PurePosixPath(name).suffix)
        if language is not None:
            return name, language
    if entry is not None:
        raise RunRefused("bad-run-request", f"{entry!r} is not a file this server can run")
    defaults = " or ".join(sorted(spec.entry for spec in languages.values()))
    raise RunRefused("bad-run-request", f"no file to run: add {defaults}")


def result_json(result: Result) -> dict[str, object]:
    return {
        "status": result.status,
        "exit_code": result.exit_code,
        "signal": result.signal,
        "wall_ms": result.wall_ms,
        "cpu_ms": result.cpu_ms,
        "peak_memory_bytes": result.peak_memory_bytes,
        "output_truncated": result.output_truncated,
        "message": result.message,
        "tests": [{"name": t.name, "passed": t.passed, "message": t.message} for t in result.tests]
        if result.tests is not None
        else None,
        "score": result.score,
    }


class RunService:
    #: The room messages this service takes (``rooms.RoomService``).
    messages: tuple[type, ...] = (RunRequest, RunInput, RunStop)
    #: Its name for requests forwarded between nodes (``rooms.RemoteService``).
    remote_tag = "run"

    def __init__(
        self,
        executor: Executor,
        limit: HourlyLimit,
        limits: Limits,
        feed: ProgressFeed | None = None,
        slots: RunSlots | None = None,
    ) -> None:
        self.executor = executor
        self.limit = limit
        self.limits = limits
        #: Where finished runs go as progress events (None: nowhere).
        self.feed = feed
        #: The rooms' run slots shared by the nodes (None: this process alone).
        self.slots = slots
        #: Runs in flight on this node, by room id: one per room.
        self.running: dict[str, RoomRun] = {}
        self._tasks: set[asyncio.Task[object]] = set()
        #: Per room, the last forwarding of input/stop: the next one waits for it (order).
        self._forwarding: dict[str, asyncio.Task[object]] = {}
        self._languages: RunLanguages | None = None

    # -- rooms.RoomService ---------------------------------------------------

    def handle(self, room: Room, conn: Connection, msg: RunMessage) -> None:
        if isinstance(msg, RunRequest):
            try:
                run = self._reserve(
                    room,
                    conn.person,
                    can_run(conn.role),
                    requester=conn,
                    entry=msg.entry,
                    stdin=msg.stdin,
                )
            except RunRefused as refused:
                room.notify(conn, "error", refused.code, refused.text)
                return
            self._keep(run)
            return
        current = self.running.get(room.id)
        if (current is None or current.id != msg.run) and self.slots is not None:
            self._forward_in_order(room, conn, msg)  # perhaps held by another node
            return
        self._command(room, conn, current, msg)

    def _command(
        self, room: Room, conn: Connection, current: RoomRun | None, msg: RunCommand
    ) -> None:
        """Input or stop for a run on this node, from someone here."""
        if current is None or current.id != msg.run:
            room.notify(conn, "error", "no-such-run", f"run {msg.run!r} is not running here")
            return
        if not self._may_command(room, conn):
            return
        if current.handle is None:
            room.notify(conn, "error", "no-such-run", "the run is still starting: try again")
            return
        _apply(current.handle, msg)

    def _may_command(self, room: Room, conn: Connection) -> bool:
        if can_run(conn.role):
            return True
        room.notify(
            conn,
            "error",
            "permission-denied",
            f"typing into or stopping a run needs the editor role; you are "
            f"{conn.role.with_article}",
        )
        return False

    # -- runs held by another node (``rooms.RemoteService``) -----------------

    def _forward_in_order(self, room: Room, conn: Connection, msg: RunCommand) -> None:
        """Forward after the room's previous forwarding: keystrokes must keep their order."""
        previous = self._forwarding.get(room.id)
        task = asyncio.get_running_loop().create_task(self._forward(previous, room, conn, msg))
        self._forwarding[room.id] = task
        self._tasks.add(task)

        def done(finished: asyncio.Task[object]) -> None:
            self._tasks.discard(finished)
            if self._forwarding.get(room.id) is finished:
                del self._forwarding[room.id]

        task.add_done_callback(done)

    async def _forward(
        self,
        previous: asyncio.Task[object] | None,
        room: Room,
        conn: Connection,
        msg: RunCommand,
    ) -> None:
        if previous is not None:
            await asyncio.wait({previous})
        assert self.slots is not None
        record = await self.slots.read(room.id)
        current = self.running.get(room.id)
        if record is None or record.run != msg.run or record.node == self.slots.node:
            self._command(room, conn, current, msg)  # here after all, or nowhere
            return
        if not self._may_command(room, conn):
            return
        if record.started is None:
            room.notify(conn, "error", "no-such-run", "the run is still starting: try again")
            return
        if not room.send_service(self.remote_tag, _command_encoder.encode(msg)):
            room.notify(conn, "error", "no-such-run", f"run {msg.run!r} is not running here")

    def remote(self, room: Room, payload: bytes) -> None:
        """Input or stop from another node, checked there, for a run that may be here."""
        try:
            msg = _command_decoder.decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            metrics.ERRORS.labels(kind="bad_bus_message").inc()
            return
        current = self.running.get(room.id)
        if current is not None and current.id == msg.run and current.handle is not None:
            _apply(current.handle, msg)

    def greet(self, room: Room, conn: Connection) -> None:
        room.send_room(conn, self.languages_message())
        current = self.running.get(room.id)
        if current is not None:
            room.send_room(conn, current.started_message())
            if current.orphan_timer is not None:  # someone is watching again
                current.orphan_timer.cancel()
                current.orphan_timer = None
        elif self.slots is not None and conn.extension:
            # perhaps a run on another node: they are told once it has started
            self._spawn(self.slots.tell_joiner(room, conn, self.running, lambda r: r.started))

    def languages_message(self) -> RunLanguages:
        """The language specs as the page needs them (built once: specs load at start)."""
        if self._languages is None:
            specs = sorted(self.executor.languages.values(), key=lambda spec: spec.name)
            self._languages = RunLanguages(
                languages=[
                    RunLanguage(name=spec.name, entry=spec.entry, extensions=list(spec.extensions))
                    for spec in specs
                ]
            )
        return self._languages

    def demo_loaded(self, room: Room) -> None:
        """Runs do not depend on the demo."""

    def room_unloaded(self, room: Room) -> None:
        """Nothing here: a run is stopped when its watchers leave (``left``)."""

    def left(self, room: Room, conn: Connection) -> None:
        current = self.running.get(room.id)
        if current is None or current.requester is not conn or room.connections:
            return
        loop = asyncio.get_running_loop()
        current.orphan_timer = loop.call_later(ORPHAN_GRACE_SECONDS, self._orphaned, current)

    def _orphaned(self, run: RoomRun) -> None:
        run.orphan_timer = None
        if self.running.get(run.room.id) is not run or run.room.connections:
            return
        if run.room.cluster is not None:  # nobody here; perhaps someone on another node
            self._spawn(self._orphaned_here(run))
            return
        self._stop_orphan(run)

    async def _orphaned_here(self, run: RoomRun) -> None:
        assert run.room.cluster is not None
        watching = await run.room.cluster.elsewhere()
        if self.running.get(run.room.id) is not run or run.room.connections:
            return
        if watching:  # look again later: they may leave too
            loop = asyncio.get_running_loop()
            run.orphan_timer = loop.call_later(ORPHAN_GRACE_SECONDS, self._orphaned, run)
            return
        self._stop_orphan(run)

    def _stop_orphan(self, run: RoomRun) -> None:
        log.info("run stopped: nobody watching", extra={"room": run.room.id, "run": run.id})
        if run.handle is not None:
            run.handle.stop()

    # -- starting -----------------------------------------------------------

    def check(self, room_id: str, person: Person, allowed: bool) -> None:
        """What can refuse a run at once, on this node (``_claim`` asks the other nodes)."""
        if not allowed:
            raise RunRefused("permission-denied", "running this room's code needs the editor role")
        if not self.executor.available:
            raise RunRefused("runs-unavailable", f"runs are unavailable: {self.executor.reason}")
        if room_id in self.running:
            raise _busy()

    async def start(
        self,
        room: Room,
        person: Person,
        allowed: bool,
        *,
        requester: Connection | None,
        entry: str | None = None,
        stdin: str = "",
    ) -> RoomRun:
        """Reserve the room's run slot (on every node), count the run against the
        person's allowance, and return the run; the caller awaits ``execute``."""
        run = self._reserve(room, person, allowed, requester=requester, entry=entry, stdin=stdin)
        await self._claim(run)
        return run

    def _reserve(
        self,
        room: Room,
        person: Person,
        allowed: bool,
        *,
        requester: Connection | None,
        entry: str | None,
        stdin: str,
    ) -> RoomRun:
        """The slot on this node, taken before the first await (so no second run here)."""
        self.check(room.id, person, allowed)
        run = RoomRun(
            id=secrets.token_urlsafe(8),
            room=room,
            by=person,
            language="",
            entry=entry or "",
            started_at=server_time_ms(),
            requester=requester,
        )
        run.stdin = stdin
        self.running[room.id] = run  # reserved before the first await
        # Loaded while it goes, even with nobody here: its watchers may be on other nodes.
        run.release_room = room.keep()
        return run

    async def _claim(self, run: RoomRun) -> None:
        """The shared slot, then the allowance; on refusal, both are given back."""
        room_id = run.room.id
        try:
            if self.slots is not None and not await self.slots.take(room_id, run.id):
                raise _busy()
            wait = await self.limit.spend(run.by.user_id)
            if wait is not None:
                metrics.RATE_LIMITED.labels(limit="runs").inc()
                raise RunRefused(
                    "rate-limited",
                    f"rate limit: {self.limit.limit} runs per hour per user; retry in "
                    f"{retry_after_header(wait)} s",
                    retry_after=wait,
                )
        except BaseException:
            await self._free(run)
            raise

    async def _free(self, run: RoomRun) -> None:
        """The run is over (or never began): the room may run again, here and elsewhere."""
        if self.running.get(run.room.id) is run:
            del self.running[run.room.id]
        if run.release_room is not None:
            run.release_room()
        if self.slots is not None:
            await self.slots.release(run.room.id, run.id)

    async def _job(self, run: RoomRun) -> Job:
        """The room's files as they are once what was typed before "Run" is stored."""
        room = run.room
        await room.settled(SETTLE_SECONDS)
        files = room.document.read_files()
        run.entry, run.language = choose_entry(files, run.entry or None, self.executor.languages)
        return Job(
            language=run.language,
            files=files,
            entry=run.entry,
            stdin=run.stdin,
            limits=self.limits,
        )

    def _keep(self, run: RoomRun) -> None:
        self._spawn(self._execute_for(run))

    def _spawn(self, work: Coroutine[object, object, object]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def execute(self, run: RoomRun) -> tuple[Result | None, str]:
        """Run it, broadcasting as it goes; the result, or None and why it could not start.

        RunRefused when the room has nothing to run.
        """
        room = run.room
        started = time.perf_counter()
        try:
            job = await self._job(run)
        except BaseException:
            await self._free(run)
            raise
        try:
            handle = await self.executor.start_run(
                job, owner=str(run.by.user_id), on_output=self._output(run)
            )
        except (ExecutorError, JobError) as exc:
            await self._free(run)
            code = "bad-run-request" if isinstance(exc, JobError) else "runs-unavailable"
            if run.requester is not None:
                room.notify(run.requester, "error", code, str(exc))
            return None, str(exc)
        except BaseException:
            await self._free(run)
            raise
        run.handle = handle
        room.last_active[run.by.user_id] = time.monotonic()
        announcement = run.started_message()
        if self.slots is not None:  # joiners on other nodes read it from now on
            await self.slots.announce(room.id, announcement)
        room.broadcast_room(announcement)
        early, run.early = run.early or [], None
        for stream, text in early:
            self._send_output(run, stream, text)
        if run.orphan_timer is None and run.requester is not None and not room.connections:
            self.left(room, run.requester)  # the requester left while it was starting
        log.info(
            "run started",
            extra={"room": room.id, "run": run.id, "entry": run.entry, "by": str(run.by.user_id)},
        )
        try:
            result = await handle.wait()
        finally:
            if run.orphan_timer is not None:
                run.orphan_timer.cancel()
            # Freed before run.exit goes out: whoever saw the exit finds the room free.
            await self._free(run)
        self._flush_decoders(run)
        room.broadcast_room(msgspec.convert({"run": run.id, **result_json(result)}, RunExit))
        if self.feed is not None:
            self.feed.submit(
                RunFinished(
                    key=f"run:{run.id}",
                    user_id=run.by.user_id,
                    occurred_at=datetime.now(UTC),
                    room_id=room.id,
                    language=run.language,
                    exit_code=result.exit_code,
                ),
                room_id=room.id,
            )
        log.info(
            "run finished",
            extra={
                "room": room.id,
                "run": run.id,
                "status": result.status,
                "seconds": round(time.perf_counter() - started, 3),
            },
        )
        return result, ""

    async def _execute_for(self, run: RoomRun) -> None:
        """A run asked for on the socket: refusals go back to whoever asked."""
        try:
            await self._claim(run)
            await self.execute(run)
        except RunRefused as refused:
            if run.requester is not None:
                run.room.notify(run.requester, "error", refused.code, refused.text)

    def _output(self, run: RoomRun) -> Callable[[OutputChunk], None]:
        def on_output(chunk: OutputChunk) -> None:
            decoder = run.decoders.get(chunk.stream)
            if decoder is None:
                decoder = run.decoders[chunk.stream] = codecs.getincrementaldecoder("utf-8")(
                    errors="replace"
                )
            text = decoder.decode(chunk.data)
            if text:
                self._send_output(run, chunk.stream, text)

        return on_output

    def _send_output(self, run: RoomRun, stream: str, text: str) -> None:
        if run.early is not None:  # run.started is not out yet
            run.early.append((stream, text))
            return
        if run.collected is not None:
            run.collected.append((stream, text))
        run.room.broadcast_room(
            RunOutput(run=run.id, stream=stream, data=text, seq=run.seq)  # type: ignore[arg-type]
        )
        run.seq += 1

    def _flush_decoders(self, run: RoomRun) -> None:
        for stream, decoder in run.decoders.items():
            tail = decoder.decode(b"", final=True)
            if tail:
                self._send_output(run, stream, tail)

    async def close(self) -> None:
        for run in list(self.running.values()):
            if run.handle is not None:
                run.handle.stop()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        if self.slots is not None:
            await self.slots.close()


def _busy() -> RunRefused:
    return RunRefused("run-busy", "a run is already going in this room: wait for it or stop it")


def _apply(handle: Run, msg: RunCommand) -> None:
    if isinstance(msg, RunInput):
        if msg.data:
            handle.send_input(msg.data.encode("utf-8"))
        if msg.eof:
            handle.close_input()
    else:
        handle.stop()
