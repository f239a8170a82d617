"""The room URL as aiohttp sees it: the room id rule and the answers to non-sockets."""

from __future__ import annotations

import asyncio

from aiohttp import web

from rooms import metrics

from .auth import Refused
from .errors import json_error, refused_error
from .keys import GATE, SOCKETS
from .roomsocket import RoomSocket
from .upgrade import ROOM_ID, ROOM_ID_RULE, accept_room, request_from


def check_room_id(room_id: str) -> None:
    if not ROOM_ID.match(room_id):
        raise json_error(web.HTTPBadRequest, f"invalid room id: use {ROOM_ID_RULE}")


async def room_socket(request: web.Request) -> web.StreamResponse:
    """A room URL that reached aiohttp: an upgrade on a kept-alive connection, or an error.

    A room socket opened as the first request of its connection is taken by
    the front door before aiohttp parses it. A client that reuses a kept-alive
    HTTP connection for the upgrade (aiohttp's client does) lands here: the
    handshake is answered the same way and aiohttp's payload-parser slot
    feeds the same RoomSocket, so the room sees no difference.
    """
    check_room_id(request.match_info["room_id"])
    accepted = accept_room(request_from(request.path_qs, list(request.headers.items())))
    transport = request.transport
    if accepted is None or transport is None:
        raise json_error(
            web.HTTPBadRequest,
            "this endpoint speaks the y-websocket protocol: open it as a WebSocket",
        )
    try:
        admission = await request.app[GATE].admit(accepted.token, accepted.room_id)
    except Refused as refused:
        metrics.REFUSED_UPGRADES.labels(status=str(refused.status)).inc()
        raise refused_error(refused) from refused
    done = asyncio.get_running_loop().create_future()
    sock = RoomSocket(
        request.app[SOCKETS], transport, accepted.room_id, admission, extension=accepted.extension
    )
    transport.write(accepted.response)
    request.protocol.keep_alive(False)
    # Bytes after the request head (aiohttp keeps them as the upgrade tail) go
    # to the socket as soon as the slot is taken: nothing is lost in between.
    request.protocol.set_parser(_Feed(sock, done))  # type: ignore[arg-type]
    sock.start()
    await done
    return web.Response(status=101)  # never written: the connection is gone


class _Feed:
    """aiohttp's payload-parser slot, feeding a RoomSocket."""

    __slots__ = ("done", "sock")

    def __init__(self, sock: RoomSocket, done: asyncio.Future[None]) -> None:
        self.sock = sock
        self.done = done

    def feed_data(self, data: bytes | bytearray | memoryview) -> tuple[bool, bytes]:
        self.sock.data_received(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.sock.connection_lost(None)
        if not self.done.done():
            self.done.set_result(None)
