"""A room WebSocket after its handshake: a slotted asyncio protocol, no task of its own.

WebSocket framing is the ``websockets`` library's sans-I/O ``Protocol``
(client frames unmasked, fragments checked against the size limit, pings
answered, the closing handshake). Everything the room decides about a frame
(echo, fan-out, close codes) lives in ``rooms``. Frames from the room to the
client are written straight to the transport, pre-built and shared by every
peer, so the sans-I/O protocol only ever sends control frames.

Compared with keeping the socket inside aiohttp's request handler, an idle
connection costs a few KiB instead of about fifteen: no request task, no
handler coroutine, no message queue, no parsed request kept for its lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from websockets.exceptions import InvalidState
from websockets.frames import Opcode
from websockets.protocol import SEND_EOF, Protocol, Side, State

from rooms import CloseCode, Connection, JoinRefused, Room, RoomRegistry, metrics

from .auth import Admission, seconds_left
from .ratelimit import SocketBudget, SocketRates

log = logging.getLogger("opencode_live.server")

#: Seconds a client gets to answer our close frame before the socket is dropped.
CLOSE_TIMEOUT = 10.0
#: Messages a client may send before its room has loaded (a y-websocket client sends two).
MAX_PENDING_MESSAGES = 256


class RoomSockets:
    """The live room sockets of this process, for shutdown."""

    def __init__(
        self,
        registry: RoomRegistry,
        *,
        max_message_bytes: int,
        send_queue_bytes: int,
        rates: SocketRates,
    ):
        self.registry = registry
        self.max_message_bytes = max_message_bytes
        self.send_queue_bytes = send_queue_bytes
        self.rates = rates
        self.live: set[RoomSocket] = set()
        self._all_closed: asyncio.Event | None = None

    def add(self, sock: RoomSocket) -> None:
        self.live.add(sock)
        metrics.CONNECTIONS.inc()

    def remove(self, sock: RoomSocket) -> None:
        if sock in self.live:
            self.live.discard(sock)
            metrics.CONNECTIONS.dec()
            if not self.live and self._all_closed is not None:
                self._all_closed.set()

    def close_all(self, code: int, reason: str) -> None:
        for sock in list(self.live):
            sock.close(code, reason)

    async def wait_closed(self, timeout: float) -> None:
        """Wait (bounded) for every socket to finish its closing handshake, then drop the rest."""
        if self.live:
            self._all_closed = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_closed.wait(), timeout)
        for sock in list(self.live):
            sock.transport.abort()


class RoomSocket(asyncio.Protocol):
    __slots__ = (
        "_budget",
        "_close_timer",
        "_expiry",
        "_fragments",
        "_join_task",
        "_pending",
        "conn",
        "protocol",
        "room",
        "room_id",
        "sockets",
        "transport",
        "valid_until",
    )

    def __init__(
        self,
        sockets: RoomSockets,
        transport: asyncio.Transport,
        room_id: str,
        admission: Admission,
        *,
        extension: bool,
    ) -> None:
        self.sockets = sockets
        self.transport = transport
        self.room_id = room_id
        self.protocol = Protocol(Side.SERVER, state=State.OPEN, max_size=sockets.max_message_bytes)
        self.conn = Connection(
            transport,
            self.close,
            send_queue_bytes=sockets.send_queue_bytes,
            person=admission.person,
            role=admission.role,
            extension=extension,
            name=admission.person.name,
        )
        self.valid_until = admission.valid_until
        self._expiry: asyncio.TimerHandle | None = None
        self._budget = SocketBudget(sockets.rates)
        self.room: Room | None = None
        #: Messages that arrived while the room was still loading.
        self._pending: list[bytes] | None = []
        self._fragments: list[bytes] | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        #: Held here: the loop keeps only a weak reference to a running task.
        self._join_task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Join the room; called once the handshake response is written."""
        self.sockets.add(self)
        loop = asyncio.get_running_loop()
        # The token's end ends the session: the client signs in again (4401 is final
        # for y-websocket, so it does not retry with the dead token).
        self._expiry = loop.call_later(seconds_left(self.valid_until), self._expired)
        self._join_task = loop.create_task(self._join())

    def _expired(self) -> None:
        self._expiry = None
        log.info("token expired", extra={"room": self.room_id, "conn": self.conn.id})
        self.conn.close(CloseCode.TOKEN_EXPIRED, "token expired: sign in again")

    async def _join(self) -> None:
        try:
            await self._enter_room()
        finally:
            self._join_task = None  # done: an idle socket keeps no task

    async def _enter_room(self) -> None:
        try:
            room = await self.sockets.registry.join(self.room_id, self.conn)
        except JoinRefused as refused:
            metrics.CLOSES.labels(code=str(refused.code)).inc()
            log.info(
                "join refused",
                extra={"room": self.room_id, "code": refused.code, "reason": refused.reason},
            )
            self.close(refused.code, refused.reason)
            return
        if self.transport.is_closing():  # left while the room was loading
            self.sockets.registry.leave(room, self.conn)
            return
        self.room = room
        log.info("connection opened", extra={"room": self.room_id, "conn": self.conn.id})
        pending, self._pending = self._pending, None
        for message in pending or ():
            if self.conn.closing:
                break
            room.receive(self.conn, message)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self.sockets.remove(self)
        self.conn.closing = True
        if self.room is not None:
            self.sockets.registry.leave(self.room, self.conn)
            close = self.protocol.close_rcvd or self.protocol.close_sent
            log.info(
                "connection closed",
                extra={
                    "room": self.room_id,
                    "conn": self.conn.id,
                    "code": close.code if close is not None else 1006,
                },
            )
            self.room = None

    # -- incoming ----------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.conn.last_seen = time.monotonic()
        protocol = self.protocol
        protocol.receive_data(data)
        for frame in protocol.events_received():
            opcode = frame.opcode
            if opcode is Opcode.BINARY or opcode is Opcode.CONT or opcode is Opcode.TEXT:
                self._data_frame(opcode, frame.data, frame.fin)
        self._flush()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._flush()
        return None

    def _data_frame(self, opcode: Opcode, data: bytes, fin: bool) -> None:
        if opcode is Opcode.TEXT:
            metrics.ERRORS.labels(kind="text_frame").inc()
            self.conn.close(
                CloseCode.UNSUPPORTED_DATA, "text frames are not part of the y-websocket protocol"
            )
            return
        if opcode is Opcode.BINARY and fin:
            self._message(data)
            return
        # A fragmented message: websockets has checked its total size already.
        if opcode is Opcode.BINARY:
            self._fragments = [data]
            return
        if self._fragments is not None:
            self._fragments.append(data)
            if fin:
                message = b"".join(self._fragments)
                self._fragments = None
                self._message(message)

    def _message(self, message: bytes) -> None:
        if self.conn.closing:
            return  # closing: what it still sends is not applied
        metrics.BYTES_IN.inc(len(message))
        over = self._budget.spend(len(message))
        if over is not None:
            metrics.RATE_LIMITED.labels(limit="socket").inc()
            log.info("socket rate limited", extra={"room": self.room_id, "conn": self.conn.id})
            self.conn.close(CloseCode.RATE_LIMITED, f"rate limit: {over}")
            return
        if self.room is None:
            if self._pending is not None:
                if len(self._pending) >= MAX_PENDING_MESSAGES:
                    self.conn.close(
                        CloseCode.TRY_AGAIN_LATER, "too many messages while the room loads"
                    )
                    return
                self._pending.append(message)
            return
        self.room.receive(self.conn, message)

    # -- outgoing ----------------------------------------------------------

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake (the Connection's closer, and shutdown's)."""
        self.conn.closing = True
        try:
            self.protocol.send_close(code, reason)
        except InvalidState:
            return  # already closing
        self._flush()

    def _flush(self) -> None:
        transport = self.transport
        for data in self.protocol.data_to_send():
            if data is SEND_EOF or data == SEND_EOF:
                if transport.can_write_eof():
                    transport.write_eof()
                transport.close()
            elif not transport.is_closing():
                transport.write(data)
        if self.protocol.close_expected() and self._close_timer is None:
            self._close_timer = asyncio.get_running_loop().call_later(
                CLOSE_TIMEOUT, transport.abort
            )
