"""The WebSocket endpoint ``/rooms/<room-id>``: plain y-websocket, plus the room extension.

The room id is checked before the upgrade (HTTP 400 with a reason), the socket
is prepared without compression (so one pre-built frame fits every peer), and
each binary frame goes to the room. Everything the room decides about a frame
(echo, fan-out, close codes) lives in ``rooms``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Coroutine

from aiohttp import WSMsgType, web

from rooms import CloseCode, Connection, JoinRefused, Room, RoomRegistry, metrics

from .config import Settings
from .errors import json_error
from .keys import REGISTRY, SETTINGS

log = logging.getLogger("opencode_live.server")

#: Letters, digits, "-", "_" and "." up to 128 characters; "." and ".." alone are refused.
ROOM_ID = re.compile(r"(?!\.{1,2}\Z)[A-Za-z0-9._-]{1,128}\Z")
ROOM_ID_RULE = 'letters, digits, "-", "_" and "." (1 to 128 characters, not "." or "..")'


def check_room_id(room_id: str) -> None:
    if not ROOM_ID.match(room_id):
        raise json_error(web.HTTPBadRequest, f"invalid room id: use {ROOM_ID_RULE}")


async def room_socket(request: web.Request) -> web.StreamResponse:
    room_id = request.match_info["room_id"]
    check_room_id(room_id)
    settings: Settings = request.app[SETTINGS]
    registry: RoomRegistry = request.app[REGISTRY]
    ws = web.WebSocketResponse(
        max_msg_size=settings.max_message_bytes,
        compress=False,
        heartbeat=settings.heartbeat_seconds,
    )
    if not ws.can_prepare(request).ok:
        raise json_error(
            web.HTTPBadRequest,
            "this endpoint speaks the y-websocket protocol: open it as a WebSocket",
        )
    await ws.prepare(request)
    transport = request.transport
    if transport is None:  # the client went away during the handshake
        return ws
    closer = _Closer(ws)
    conn = Connection(
        transport,
        closer,
        send_queue_bytes=settings.send_queue_bytes,
        extension=request.query.get("ext") == "1",
    )
    metrics.CONNECTIONS.inc()
    try:
        try:
            room = await registry.join(room_id, conn)
        except JoinRefused as refused:
            metrics.CLOSES.labels(code=str(refused.code)).inc()
            log.info(
                "join refused",
                extra={"room": room_id, "code": refused.code, "reason": refused.reason},
            )
            await ws.close(code=refused.code, message=refused.reason.encode())
            return ws
        log.info(
            "connection opened", extra={"room": room_id, "conn": conn.id, "peer": request.remote}
        )
        try:
            await _read(ws, conn, room, closer)
        finally:
            registry.leave(room, conn)
            await closer.finish()
            log.info(
                "connection closed", extra={"room": room_id, "conn": conn.id, "code": ws.close_code}
            )
    finally:
        metrics.CONNECTIONS.dec()
    return ws


class _Closer:
    """Closes the socket for the room without racing the handler's own reads.

    aiohttp allows one reader. While the handler is handling a frame (not
    waiting in ``receive``), a close requested then is left for the handler to
    do once the frame is handled; at any other time the handler is parked in
    ``receive`` and ``ws.close`` from a task is the supported way.
    """

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.in_handler = True
        self.pending: tuple[int, str] | None = None
        self.task: asyncio.Task[bool] | None = None

    def __call__(self, code: int, reason: str) -> None:
        if self.in_handler:
            self.pending = (code, reason)
        elif self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._close(code, reason))

    def _close(self, code: int, reason: str) -> Coroutine[object, object, bool]:
        return self.ws.close(code=code, message=reason.encode("utf-8"))

    async def close_pending(self) -> bool:
        """Do a close asked for while handling a frame; True when the socket is done."""
        if self.pending is None:
            return False
        code, reason = self.pending
        self.pending = None
        await self._close(code, reason)
        return True

    async def finish(self) -> None:
        if self.task is not None:
            await asyncio.shield(self.task)


async def _read(ws: web.WebSocketResponse, conn: Connection, room: Room, closer: _Closer) -> None:
    while True:
        if await closer.close_pending():
            return
        closer.in_handler = False
        msg = await ws.receive()
        closer.in_handler = True
        if msg.type is WSMsgType.BINARY:
            if conn.closing:
                continue  # closing: what it still sends is not applied
            metrics.BYTES_IN.inc(len(msg.data))
            room.receive(conn, msg.data)
        elif msg.type is WSMsgType.TEXT:
            metrics.ERRORS.labels(kind="text_frame").inc()
            conn.close(
                CloseCode.UNSUPPORTED_DATA, "text frames are not part of the y-websocket protocol"
            )
        elif msg.type is WSMsgType.ERROR:
            # aiohttp has closed the socket already (1009 for an oversize frame).
            metrics.ERRORS.labels(kind="frame_error").inc()
            log.info(
                "websocket error",
                extra={"room": room.id, "conn": conn.id, "error": str(ws.exception())},
            )
            return
        elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            return
