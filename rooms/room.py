"""A room: its document, its awareness table and the connections in it.

The fan-out path is the hot one. A frame is parsed once, the update applied
once, a WebSocket frame built once, and then the same ``bytes`` object is
handed to every connection's transport (the sender's too, as the y-websocket
reference server does: a client's own awareness echo keeps it from timing out).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import msgspec

import demos
from crdt import (
    AwarenessTable,
    Message,
    MessageKind,
    ProtocolError,
    RoomDocument,
    awareness_message,
    decode_awareness_update,
    parse_frame,
    permission_denied,
    room_message,
    step2_as_update,
    sync_update,
)

from . import extension, metrics
from .access import RoomRole, can_edit
from .bus import Kind
from .closecodes import CloseCode
from .commit import GroupCommit
from .connection import Connection
from .democommands import DemoCommands
from .framing import binary_frame
from .limits import RoomLimits
from .shareddemo import DemoChange

if TYPE_CHECKING:
    from .cluster import RoomLink

log = logging.getLogger("opencode_live.rooms")

EMPTY_UPDATE = b"\x00\x00"


class RoomService(Protocol):
    """A room feature behind extension messages (runs, recording, questions...).

    The room hands each message of a type in ``messages`` to its service, tells
    every service about joiners (so they can catch them up) and leavers. Why a
    registry of services rather than one attribute each: the room stays the
    same size however many features the server grows.
    """

    messages: tuple[type, ...]

    def handle(self, room: Room, conn: Connection, msg: extension.ClientMessage) -> None: ...

    def greet(self, room: Room, conn: Connection) -> None:
        """Tell a joiner (who speaks the extension channel) what is going on."""
        ...

    def left(self, room: Room, conn: Connection) -> None:
        """A connection left: something it asked for may have nobody watching."""
        ...

    def demo_loaded(self, room: Room) -> None:
        """The room loaded another demo (``room.playback``, ``room.timeline``)."""
        ...

    def room_unloaded(self, room: Room) -> None:
        """The room left memory (nobody in it): drop or finish what is held for it."""
        ...


@runtime_checkable
class RemoteService(Protocol):
    """A room service whose work lives on one node but is asked for from any.

    With several nodes, what a service holds (a run and its container) is on
    the node that started it, while the people asking for it (typing into the
    run, stopping it) may be on another; the asking node checks permissions and
    sends ``payload`` over the bus (``Room.send_service``), and every other node
    holding the room hands it to its service of the same ``remote_tag``.
    """

    remote_tag: str

    def remote(self, room: Room, payload: bytes) -> None: ...


class RoomTap(Protocol):
    """Sees what the room's people see, in order: a recording of the room listens here."""

    def update(self, update: bytes) -> None:
        """A stored update, as applied to the document."""
        ...

    def message(self, message: extension.ServerMessage) -> None:
        """An extension message sent to everyone in the room (run output, demo state...)."""
        ...

    def awareness(self, update: bytes) -> None:
        """An awareness update (cursors, selections) as relayed to the room."""
        ...


class DemoLibrary(Protocol):
    """Where a room looks up a demo before loading it (the store's demo library)."""

    async def timeline(self, demo_id: str) -> demos.Timeline | None: ...

    async def demo(self, demo_id: str) -> demos.Demo | None: ...


class Compactor(Protocol):
    """What a room needs of the store for compaction (``store.Store`` provides it)."""

    def compact(self, room_id: str, upto_seq: int, state: bytes) -> Awaitable[bool]: ...


_service_encoder = msgspec.msgpack.Encoder()
_service_decoder = msgspec.msgpack.Decoder(tuple[str, bytes])


def service_message(tag: str, payload: bytes) -> bytes:
    """The body of a ``Kind.SERVICE`` bus message for the service ``tag``."""
    return _service_encoder.encode((tag, payload))


# Resolved once: a labels() lookup per message would be work on the hot path.
_MESSAGES_IN = {kind: metrics.MESSAGES_IN.labels(kind=kind.name) for kind in MessageKind}


class Room:
    def __init__(
        self, room_id: str, limits: RoomLimits, commit: GroupCommit, store: Compactor
    ) -> None:
        self.id = room_id
        self.limits = limits
        self.commit = commit
        self.store = store
        #: Sequence number of the newest update in the document (all committed);
        #: shared across nodes, every update up to it is in the document.
        self.last_seq = 0
        #: The same room on other nodes (None: this process alone, as without a bus).
        self.cluster: RoomLink | None = None
        #: Log rows and bytes since the latest snapshot: compaction's trigger.
        self.log_rows = 0
        self.log_bytes = 0
        self._compacting = False
        #: Updates submitted to the log whose commit has not returned yet.
        self.uncommitted = 0
        #: Updates submitted and committed so far, and who waits for a count.
        self._submitted = 0
        self._stored = 0
        self._settle_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.document = RoomDocument()
        self.awareness = AwarenessTable()
        self.connections: dict[Connection, None] = {}
        self.created = time.time()
        #: Set once the document is loaded; joiners wait on it.
        self.loaded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        #: Connections that asked to join while the room was loading.
        self.joining = 0
        #: Work that keeps the room loaded without a connection here (``keep``).
        self.kept = 0
        #: Told when the last ``keep`` is released (the registry may unload the room).
        self.on_released: Callable[[Room], None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: Features behind extension messages, by message type (``RoomService``).
        self.services: dict[type, RoomService] = {}
        self._every_service: dict[RoomService, None] = {}
        self._remote: dict[str, RemoteService] = {}
        #: Listens to the room while it is being recorded.
        self.taps: list[RoomTap] = []
        #: Demos are looked up here when loaded; None: any id is accepted unchecked.
        self.library: DemoLibrary | None = None
        #: The demo everyone in the room follows (``demos.playback``).
        self.playback = demos.IDLE
        self._playback_by = ""
        #: The loaded demo's steps, markers and length (None: no demo loaded).
        self.timeline: demos.Timeline | None = None
        #: The presenters' demo commands, done in order (``rooms.democommands``).
        self.demo_commands = DemoCommands(self)
        #: The highlights of the demo files last copied into the room, for joiners.
        self.highlights: extension.DemoHighlights | None = None
        #: When (``time.monotonic``) the server last saw each person do something
        #: here: an accepted edit (runs add theirs). Pairing minutes read it.
        self.last_active: dict[uuid.UUID, float] = {}
        # A big document's sync is cut into pieces that leave room in the send
        # queue for live traffic (see Connection.send_paced).
        self._sync_piece_bytes = min(limits.max_message_bytes, limits.send_queue_bytes // 4)

    def __repr__(self) -> str:
        return f"<Room {self.id!r} connections={len(self.connections)}>"

    # -- membership -------------------------------------------------------

    def join(self, conn: Connection) -> None:
        """Greet a new connection the way y-websocket's server does."""
        self.connections[conn] = None
        conn.send(self.document.step1_message())
        states = self.awareness.encode_all()
        if states is not None:
            conn.send(awareness_message(states))
        if conn.extension:
            self._send_hello(conn)

    def keep(self) -> Callable[[], None]:
        """Keep the room loaded until the returned function is called.

        For work held on this node that people on other nodes follow (a run, a
        recording): without it, the room would be unloaded when its last
        connection here leaves, and with it the room's link to the others.
        """
        self.kept += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self.kept -= 1
            if self.kept == 0 and self.on_released is not None:
                self.on_released(self)

        return release

    def leave(self, conn: Connection) -> None:
        if conn not in self.connections:
            return
        del self.connections[conn]
        for service in self._distinct_services():
            service.left(self, conn)
        if conn.controlled:
            removal = self.awareness.remove(conn.controlled)
            conn.controlled.clear()
            if removal is not None:
                message = awareness_message(removal)
                self.broadcast(message)
                if self.cluster is not None:
                    self.cluster.publish(Kind.AWARENESS, message)

    # -- incoming ---------------------------------------------------------

    def receive(self, conn: Connection, frame: bytes) -> None:
        """Handle one binary frame from ``conn``; a bad one closes only ``conn``."""
        received = time.perf_counter()
        try:
            messages = parse_frame(frame)
            for message in messages:
                _MESSAGES_IN[message.kind].inc()
                self._dispatch(conn, message, received)
        except ProtocolError as exc:
            metrics.ERRORS.labels(kind="malformed_frame").inc()
            log.info("malformed frame", extra={"room": self.id, "conn": conn.id, "error": str(exc)})
            conn.close(CloseCode.MALFORMED, _reason(f"malformed frame: {exc}"))

    def _dispatch(self, conn: Connection, message: Message, received: float) -> None:
        kind = message.kind
        if kind is MessageKind.SYNC_UPDATE or kind is MessageKind.SYNC_STEP2:
            update = message.payload
            if update == EMPTY_UPDATE:
                return
            self.document.check_update(update)
            if not can_edit(conn.role):
                self._refuse_edit(conn, kind, update)
                return
            raw = message.raw if kind is MessageKind.SYNC_UPDATE else step2_as_update(message)
            # The author sees its own echo at once; everyone else once it is durable.
            frame = binary_frame(raw)
            conn.send_frame(frame)
            after = partial(self._committed, update, frame, conn, received)
            if self.commit.submit(self.id, update, after, conn.person.user_id):
                self.uncommitted += 1
                self._submitted += 1
                self.last_active[conn.person.user_id] = time.monotonic()
            else:
                conn.close(CloseCode.TRY_AGAIN_LATER, "changes cannot be saved right now")
        elif kind is MessageKind.AWARENESS:
            change = self.awareness.apply(decode_awareness_update(message.payload))
            if change:
                conn.controlled.update(change.added)
                conn.controlled.difference_update(change.removed)
                self.broadcast(message.raw, received)
                if self.cluster is not None:
                    self.cluster.publish(Kind.AWARENESS, message.raw)
                for tap in self.taps:
                    tap.awareness(message.payload)
        elif kind is MessageKind.SYNC_STEP1:
            answer = self.document.sync_answer(message.payload, self._sync_piece_bytes)
            self._send_answer(conn, answer)
        elif kind is MessageKind.QUERY_AWARENESS:
            states = self.awareness.encode_all()
            if states is not None:
                conn.send(awareness_message(states))
        elif kind is MessageKind.ROOM:
            self._room_message(conn, message.payload)
        # MessageKind.AUTH from a client means nothing to the server: ignored.

    def _refuse_edit(self, conn: Connection, kind: MessageKind, update: bytes) -> None:
        """A change from someone who may only watch: not applied, not stored, and said so.

        A reader's client answers the server's sync step 1 with its whole delete
        set, which changes nothing; only an answer that adds content, or an
        update, is an attempt to edit worth telling about.
        """
        if kind is MessageKind.SYNC_STEP2 and not self.document.adds_content(update):
            return
        metrics.REFUSED_EDITS.inc()
        reason = f"you are {conn.role.with_article} in room {self.id}: your changes are not saved"
        conn.send(permission_denied(reason))
        self.notify(conn, "error", "permission-denied", reason)

    def set_role(self, user_id: object, role: RoomRole) -> None:
        """A person's role changed: their connections get it, or leave if it is NONE."""
        for conn in list(self.connections):
            if conn.person.user_id != user_id or conn.role == role:
                continue
            if role is RoomRole.NONE:
                conn.close(CloseCode.ACCESS_REVOKED, "your access to this room was withdrawn")
                continue
            conn.role = role
            if conn.extension:
                self._send_room(conn, extension.Access(role=role.label, can_edit=can_edit(role)))
            text = f"you are now {role.with_article} in this room"
            self.notify(conn, "info", "role-changed", text)

    def _send_answer(self, conn: Connection, answer: list[bytes]) -> None:
        if len(answer) == 1:
            conn.send(answer[0])
            return
        self.spawn(conn.send_paced(answer, self.limits.initial_sync_timeout_seconds))

    def spawn(self, work: Coroutine[object, object, None]) -> None:
        """Work of the room's in the background, cancelled by ``drain``."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- fan-out ----------------------------------------------------------

    def broadcast(self, message: bytes, received: float | None = None) -> None:
        """Send one message to every connection as one shared pre-built frame."""
        frame = binary_frame(message)
        sent = 0
        for conn in self.connections:
            if conn.send_frame(frame):
                sent += 1
        metrics.MESSAGES_OUT.inc(sent)
        metrics.BYTES_OUT.inc(sent * len(frame))
        if received is not None:
            metrics.FANOUT_SECONDS.observe(time.perf_counter() - received)

    def _committed(
        self, update: bytes, frame: bytes, author: Connection, received: float, seq: int
    ) -> None:
        """The update is in the log: apply it and send it to everyone but its author."""
        self.uncommitted -= 1
        try:
            self.document.apply_update(update)
        except ProtocolError:  # decoded when it came in, so this is a bug of ours
            metrics.ERRORS.labels(kind="apply_after_commit").inc()
            log.exception("stored update did not apply", extra={"room": self.id, "seq": seq})
        self._logged(seq, len(update))
        for tap in self.taps:
            tap.update(update)
        sent = 0
        for conn in self.connections:
            if conn is not author and conn.send_frame(frame):
                sent += 1
        metrics.MESSAGES_OUT.inc(sent)
        metrics.BYTES_OUT.inc(sent * len(frame))
        metrics.FANOUT_SECONDS.observe(time.perf_counter() - received)
        if self.cluster is not None:
            self.cluster.committed(seq, update)

    async def write(self, update: bytes, author: uuid.UUID | None = None) -> None:
        """An update made on the server (HTTP API), already in the document:
        store it, then send it to every client.

        What follows the commit runs in the commit's callback, so it happens
        even when the HTTP request that asked for it has gone away.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def committed(seq: int) -> None:
            self.uncommitted -= 1
            self._logged(seq, len(update))
            for tap in self.taps:
                tap.update(update)
            self.broadcast(sync_update(update))
            if self.cluster is not None:
                self.cluster.committed(seq, update)
            if not done.done():
                done.set_result(None)

        if not self.commit.submit(self.id, update, committed, author):
            raise ConnectionError("changes cannot be saved right now")
        self.uncommitted += 1
        self._submitted += 1
        await done

    async def settled(self, timeout: float) -> bool:
        """Wait until every update received so far is stored and applied (so the
        document holds what a client typed just before asking for a run).
        False if that took longer than ``timeout``."""
        if self._stored >= self._submitted:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._settle_waiters.append((self._submitted, waiter))
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            return False
        return True

    def _logged(self, seq: int, size: int) -> None:
        self._stored += 1
        if self._settle_waiters:
            still = []
            for target, waiter in self._settle_waiters:
                if self._stored >= target:
                    if not waiter.done():
                        waiter.set_result(None)
                else:
                    still.append((target, waiter))
            self._settle_waiters = still
        if self.cluster is None:  # else the link moves it, once no seq before is missing
            self.last_seq = seq
        self._grew(size, own=True)

    def _grew(self, size: int, *, own: bool = False) -> None:
        """One more row in the log after the snapshot (from this node or another).

        With several nodes, only the node whose own commit makes the log long
        folds it (and tells the others, ``compacted_elsewhere``): every node
        counts the same rows, and all of them encoding and writing the same
        snapshot at once would repeat the work for nothing.
        """
        self.log_rows += 1
        self.log_bytes += size
        if not own and self.cluster is not None:
            return
        if not self._compacting and self._log_is_long():
            self._compacting = True
            self.spawn(self._compact())

    def _log_is_long(self) -> bool:
        limits = self.limits
        return (
            self.log_rows >= limits.compact_after_updates
            or self.log_bytes >= limits.compact_after_bytes
        )

    async def _compact(self) -> None:
        """Fold the log into a snapshot of the document as of ``last_seq``.

        The document only ever holds committed updates (plus, for a moment, an
        HTTP write that is committing), so its state covers the log up to
        ``last_seq``; updates committed meanwhile get later numbers and stay.
        Repeats while the log grew past the threshold again during the last one.
        """
        try:
            while self._log_is_long():
                upto = self.last_seq
                rows, size = self.log_rows, self.log_bytes
                state = self.document.doc.get_update()
                if not await self.store.compact(self.id, upto, state):
                    if self.cluster is not None:
                        # Another node folded the log as far or further: start counting anew.
                        metrics.COMPACTIONS_REDUNDANT.inc()
                        self.log_rows = self.log_bytes = 0
                    return
                metrics.COMPACTIONS.inc()
                self.log_rows -= rows
                self.log_bytes -= size
                if self.cluster is not None:
                    self.cluster.publish_seq(Kind.COMPACTED, upto)
        except Exception:
            metrics.ERRORS.labels(kind="compaction").inc()
            log.exception("compaction failed", extra={"room": self.id})
        finally:
            self._compacting = False

    # -- room extension channel -------------------------------------------

    def _room_message(self, conn: Connection, body: bytes) -> None:
        try:
            msg = extension.decode_client(body)
        except extension.ExtensionError as exc:
            self.notify(conn, "error", "bad-room-message", str(exc))
            return
        if isinstance(msg, extension.ClientHello):
            if msg.name:
                conn.name = msg.name
            if not conn.extension:
                conn.extension = True
                self._send_hello(conn)
        elif isinstance(msg, extension.Ping):
            self._send_room(
                conn,
                extension.Pong(
                    id=msg.id, client_time=msg.client_time, server_time=extension.server_time_ms()
                ),
            )
        elif isinstance(msg, extension.DemoControl):
            self.demo_commands.control(conn, msg)
        else:
            service = self.services.get(type(msg))
            if service is not None:
                service.handle(self, conn, msg)
            elif isinstance(msg, extension.RunMessage):
                self.notify(conn, "error", "runs-unavailable", "this server does not run code")
            else:
                kind = type(msg).__struct_config__.tag
                self.notify(conn, "error", "unavailable", f"this server does not handle {kind!r}")

    def adopt_demo(self, change: DemoChange) -> None:
        """Show the room's demo as ``change`` has it (a command here, or another node's)."""
        moved = change.state != self.playback or change.by != self._playback_by
        # A copy's highlights are a new object, even when they are equal to the last ones.
        copied = change.highlights is not None and change.highlights is not self.highlights
        self.playback = change.state
        self._playback_by = change.by
        self.timeline = change.timeline
        self.highlights = change.highlights
        # Told here only: the other nodes have the record.
        if moved:
            self.broadcast_room(self.demo_state(), share=False)
        if copied and change.highlights is not None:
            self.broadcast_room(change.highlights, share=False)
        if change.loads:
            for service in self._distinct_services():
                service.demo_loaded(self)

    def set_timeline(self, timeline: demos.Timeline) -> None:
        """The loaded demo's timeline, looked up after another node loaded it."""
        self.timeline = timeline
        for service in self._distinct_services():
            service.demo_loaded(self)

    @property
    def playback_by(self) -> str:
        """Who gave the last demo command."""
        return self._playback_by

    def demo_state(self) -> extension.DemoState:
        return self.demo_state_of(self.playback, self._playback_by)

    @staticmethod
    def demo_state_of(state: demos.PlaybackState, by: str) -> extension.DemoState:
        return extension.DemoState(
            demo=state.demo,
            position=state.position,
            playing=state.playing,
            rate=state.rate,
            at=state.at,
            by=by,
            kind=state.kind,
            duration=state.duration,
            mode=state.mode,
        )

    def _send_hello(self, conn: Connection) -> None:
        hello = extension.ServerHello(
            room=self.id,
            protocol=extension.PROTOCOL_VERSION,
            server_time=extension.server_time_ms(),
            connections=len(self.connections),
            document_version=self.document.version,
            max_message_bytes=self.limits.max_message_bytes,
            user=str(conn.person.user_id),
            name=conn.person.name,
            user_role=conn.person.role,
            role=conn.role.label,
            can_edit=can_edit(conn.role),
        )
        self._send_room(conn, hello)
        if self.playback.demo is not None:  # a late joiner lands where everyone is
            self._send_room(conn, self.demo_state())
        if self.highlights is not None:
            self._send_room(conn, self.highlights)
        for service in self._distinct_services():
            service.greet(self, conn)

    def _distinct_services(self) -> list[RoomService]:
        return list(self._every_service)

    def add_service(self, service: RoomService) -> None:
        for kind in service.messages:
            self.services[kind] = service
        # Told of joins and leaves even without messages of its own (pairing, demo watching).
        self._every_service[service] = None
        if isinstance(service, RemoteService):
            self._remote[service.remote_tag] = service

    def send_service(self, tag: str, payload: bytes) -> bool:
        """``payload`` for the service ``tag`` on the other nodes; False: there are none."""
        if self.cluster is None:
            return False
        self.cluster.publish(Kind.SERVICE, service_message(tag, payload))
        return True

    def _send_room(self, conn: Connection, message: extension.ServerMessage) -> None:
        conn.send(room_message(extension.encode_server(message)))

    def send_room(self, conn: Connection, message: extension.ServerMessage) -> None:
        """One extension message to one connection that speaks the channel."""
        if conn.extension:
            self._send_room(conn, message)

    def broadcast_room(self, message: extension.ServerMessage, *, share: bool = True) -> None:
        """One extension message to everyone here who speaks the channel, framed once
        (and, with ``share``, to the room's people on other nodes)."""
        body = room_message(extension.encode_server(message))
        for tap in self.taps:
            tap.message(message)
        self._send_extension(binary_frame(body))
        if share and self.cluster is not None:
            self.cluster.publish(Kind.ROOM, body)

    def _send_extension(self, frame: bytes) -> None:
        for peer in self.connections:
            if peer.extension:
                peer.send_frame(frame)

    # -- from the same room on other nodes (``rooms.cluster``) --------------

    def deliver_update(self, update: bytes) -> None:
        """An update another node stored: into the document, out to everyone here."""
        try:
            self.document.apply_update(update)
        except ProtocolError:  # stored by a node that checked it: a bug somewhere
            metrics.ERRORS.labels(kind="bad_bus_update").inc()
            log.error("update from the bus did not apply", extra={"room": self.id})
            return
        self._grew(len(update))
        for tap in self.taps:
            tap.update(update)
        self.broadcast(sync_update(update))

    def compacted_elsewhere(self, upto: int) -> None:
        """Another node folded the log up to ``upto``: what is left is what came after."""
        self.log_rows = max(0, self.last_seq - upto)
        self.log_bytes = 0

    def deliver_state(self, state: bytes, tail_rows: int) -> None:
        """A snapshot read in a catch-up: what it adds goes out as one update."""
        before = self.document.doc.get_state()
        try:
            self.document.apply_update(state)
        except ProtocolError:
            metrics.ERRORS.labels(kind="bad_stored_update").inc()
            log.error("snapshot did not apply", extra={"room": self.id})
            return
        self.log_rows, self.log_bytes = tail_rows, 0
        added = self.document.doc.get_update(before)
        if added != EMPTY_UPDATE:
            for tap in self.taps:
                tap.update(added)
            self.broadcast(sync_update(added))

    def deliver_awareness(self, message: bytes) -> None:
        """Presence relayed by another node: into the table (for joiners here), then out."""
        try:
            (parsed,) = parse_frame(message)
            change = self.awareness.apply(decode_awareness_update(parsed.payload))
        except (ProtocolError, ValueError):
            metrics.ERRORS.labels(kind="bad_bus_message").inc()
            return
        if change:
            self.broadcast(message)
            for tap in self.taps:
                tap.awareness(parsed.payload)

    def deliver_room(self, message: bytes) -> None:
        """An extension broadcast from another node, to the opted-in people here
        (and to a recording made on this node)."""
        self._send_extension(binary_frame(message))
        if self.taps:
            try:
                parsed = extension.decode_server(parse_frame(message)[0].payload)
            except (ProtocolError, extension.ExtensionError, IndexError):
                metrics.ERRORS.labels(kind="bad_bus_message").inc()
                return
            for tap in self.taps:
                tap.message(parsed)

    def deliver_service(self, body: bytes) -> None:
        """A request for a service's work held here (``RemoteService``)."""
        try:
            tag, payload = _service_decoder.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError):
            metrics.ERRORS.labels(kind="bad_bus_message").inc()
            return
        service = self._remote.get(tag)
        if service is not None:
            service.remote(self, payload)

    def notify(self, conn: Connection, level: str, code: str, text: str) -> None:
        """A notice on the extension channel; plain Yjs clients are not sent one."""
        if conn.extension:
            self._send_room(conn, extension.Notice(level=level, code=code, text=text))  # type: ignore[arg-type]

    # -- housekeeping -----------------------------------------------------

    def expire_awareness(self) -> None:
        """Drop states not renewed in time, as y-protocols' Awareness does."""
        timeout = self.limits.awareness_timeout_seconds
        self.awareness.forget_removed(older_than=2 * timeout)
        outdated = self.awareness.outdated(timeout)
        if outdated:
            removal = self.awareness.remove(outdated)
            for conn in self.connections:
                conn.controlled.difference_update(outdated)
            if removal is not None:
                self.broadcast(awareness_message(removal))

    def close_all(self, code: int, reason: str) -> None:
        for conn in list(self.connections):
            conn.close(code, reason)

    async def drain(self) -> None:
        """Let in-flight big syncs finish or fail before the room goes away."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _reason(text: str) -> str:
    """A close reason must fit in 123 bytes of UTF-8."""
    encoded = text.encode("utf-8")[:123]
    return encoded.decode("utf-8", errors="ignore")
