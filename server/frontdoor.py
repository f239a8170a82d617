"""The first bytes of every TCP connection: a room WebSocket is ours, the rest is aiohttp's.

A connection whose first request is a valid WebSocket upgrade of
``/rooms/<room-id>`` is answered here (the ``websockets`` library checks the
handshake) and handed to a lean ``RoomSocket``. Every other connection is
given, with the bytes read so far, to aiohttp's request handler, which serves
the HTTP API and answers a bad room id, a plain GET of a room URL or a broken
handshake with its JSON errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from .roomsocket import RoomSocket, RoomSockets
from .upgrade import accept_room, parse_head

#: Longest request head read before deciding; beyond it aiohttp takes over.
MAX_HEAD_BYTES = 16 * 1024
#: Seconds a connection may take to send its first request head.
HEAD_TIMEOUT = 30.0
_ROOMS_PREFIX = b"GET /rooms/"


class FrontDoor(asyncio.Protocol):
    __slots__ = ("_buffer", "_http_factory", "_sockets", "_timer", "_transport")

    def __init__(self, http_factory: Callable[[], asyncio.Protocol], sockets: RoomSockets) -> None:
        self._http_factory = http_factory
        self._sockets = sockets
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but are one.
        self._transport = cast(asyncio.Transport, transport)
        self._timer = asyncio.get_running_loop().call_later(HEAD_TIMEOUT, transport.close)

    def data_received(self, data: bytes) -> None:
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
        room_id, extension, response = room
        transport = self._transport
        assert transport is not None
        self._done()
        transport.write(response)
        sock = RoomSocket(self._sockets, transport, room_id, extension=extension)
        transport.set_protocol(sock)
        sock.start()
        if rest:
            sock.data_received(rest)

    def eof_received(self) -> bool | None:
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
