"""The first bytes of every TCP connection: a room WebSocket is ours, the rest is aiohttp's.

A connection whose first request is a valid WebSocket upgrade of
``/rooms/<room-id>`` is answered here (the ``websockets`` library checks the
handshake): reading pauses while the gate checks the client's token and room
role, then either the 101 goes out and a lean ``RoomSocket`` takes over, or a
401/403 with a JSON body naming the rule that failed, and the connection
closes. Every other connection is given, with the bytes read so far, to
aiohttp's request handler, which serves the HTTP API and answers a bad room
id, a plain GET of a room URL or a broken handshake with its JSON errors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import cast

from rooms import metrics

from .auth import Admission, Refused
from .roomsocket import RoomSocket, RoomSockets
from .upgrade import RoomUpgrade, accept_room, parse_head, refusal_response

log = logging.getLogger("opencode_live.server")

#: Checks a room upgrade's token and room role (``Gate.admit``).
Admit = Callable[[str | None, str], Awaitable[Admission]]

#: Longest request head read before deciding; beyond it aiohttp takes over.
MAX_HEAD_BYTES = 16 * 1024
#: Seconds a connection may take to send its first request head.
HEAD_TIMEOUT = 30.0
_ROOMS_PREFIX = b"GET /rooms/"


class FrontDoor(asyncio.Protocol):
    __slots__ = (
        "_admit",
        "_admitting",
        "_buffer",
        "_http_factory",
        "_sockets",
        "_timer",
        "_transport",
    )

    def __init__(
        self, http_factory: Callable[[], asyncio.Protocol], sockets: RoomSockets, admit: Admit
    ) -> None:
        self._http_factory = http_factory
        self._sockets = sockets
        self._admit = admit
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._timer: asyncio.TimerHandle | None = None
        #: Held here: the loop keeps only a weak reference to a running task.
        self._admitting: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but are one.
        self._transport = cast(asyncio.Transport, transport)
        self._timer = asyncio.get_running_loop().call_later(HEAD_TIMEOUT, transport.close)

    def data_received(self, data: bytes) -> None:
        if self._admitting is not None:
            self._buffer += data  # arrived before reading paused
            return
        self._buffer += data
        if not self._buffer.startswith(_ROOMS_PREFIX[: len(self._buffer)]):
            self._to_http()
            return
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                self._to_http()
            return
        head, rest = bytes(self._buffer[: end + 4]), bytes(self._buffer[end + 4 :])
        request = parse_head(head)
        room = accept_room(request) if request is not None else None
        if room is None:
            self._to_http()
            return
        transport = self._transport
        assert transport is not None
        transport.pause_reading()
        self._buffer = bytearray(rest)
        self._admitting = asyncio.get_running_loop().create_task(self._enter(room))

    async def _enter(self, upgrade: RoomUpgrade) -> None:
        """Let the client in with its room role, or answer why not and hang up."""
        try:
            admission = await self._admit(upgrade.token, upgrade.room_id)
        except Refused as refused:
            metrics.REFUSED_UPGRADES.labels(status=str(refused.status)).inc()
            log.info(
                "upgrade refused",
                extra={"room": upgrade.room_id, "status": refused.status, "why": refused.message},
            )
            transport = self._transport
            self._done()
            self._transport = None
            if transport is not None and not transport.is_closing():
                transport.write(refusal_response(refused.status, refused.message))
                transport.close()
            return
        except Exception:
            log.exception("admission failed", extra={"room": upgrade.room_id})
            transport = self._transport
            self._done()
            self._transport = None
            if transport is not None and not transport.is_closing():
                transport.write(refusal_response(500, "internal error while checking access"))
                transport.close()
            return
        transport = self._transport
        if transport is None or transport.is_closing():
            return  # the client left while we checked
        self._done()
        self._transport = None
        rest, self._buffer = bytes(self._buffer), bytearray()
        transport.write(upgrade.response)
        sock = RoomSocket(
            self._sockets, transport, upgrade.room_id, admission, extension=upgrade.extension
        )
        transport.set_protocol(sock)
        sock.start()
        if rest:
            sock.data_received(rest)
        transport.resume_reading()

    def eof_received(self) -> bool | None:
        if self._admitting is None:
            self._to_http()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._done()
        self._transport = None

    def _done(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _to_http(self) -> None:
        """Give the connection, and what it sent so far, to aiohttp."""
        transport = self._transport
        if transport is None:
            return
        self._done()
        handler = self._http_factory()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if self._buffer:
            handler.data_received(bytes(self._buffer))
        self._buffer = bytearray()
        self._transport = None
