"""The aiohttp application: routes, start-up and shutdown."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rooms import CloseCode, RoomLoader, RoomRegistry

from . import api, heartbeat, ws
from .config import Settings
from .frontdoor import FrontDoor
from .keys import REGISTRY, SETTINGS, SOCKETS
from .roomsocket import RoomSockets

log = logging.getLogger("opencode_live.server")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    # Nothing external yet: the database and Redis join this check when they land.
    return web.json_response({"status": "ready", "checks": {}})


async def metrics_view(request: web.Request) -> web.Response:
    body = generate_latest()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(settings: Settings, *, loader: RoomLoader | None = None) -> web.Application:
    """The whole server; ``loader`` supplies a room's stored updates (none yet by default)."""
    app = web.Application(client_max_size=settings.max_message_bytes + 1024)
    app[SETTINGS] = settings
    registry = RoomRegistry(settings.room_limits(), loader=loader)
    app[REGISTRY] = registry
    sockets = RoomSockets(
        registry,
        max_message_bytes=settings.max_message_bytes,
        send_queue_bytes=settings.send_queue_bytes,
    )
    app[SOCKETS] = sockets
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/rooms/{room_id}", ws.room_socket)
    app.router.add_get("/api/rooms", api.list_rooms)
    app.router.add_get("/api/rooms/{room_id}/files", api.get_files)
    app.router.add_get("/api/rooms/{room_id}/files/{path:.+}", api.get_file)
    app.router.add_put("/api/rooms/{room_id}/files/{path:.+}", api.put_file)
    app.router.add_delete("/api/rooms/{room_id}/files/{path:.+}", api.delete_file)

    tasks: list[asyncio.Task[None]] = []

    async def start(app: web.Application) -> None:
        await registry.start()
        if settings.heartbeat_seconds > 0:
            tasks.append(asyncio.create_task(heartbeat.run(registry, settings.heartbeat_seconds)))

    async def shutdown(app: web.Application) -> None:
        for task in tasks:
            task.cancel()
        await _flush(registry, settings.shutdown_timeout_seconds)
        sockets.close_all(CloseCode.GOING_AWAY, "server shutting down")
        await sockets.wait_closed(settings.shutdown_timeout_seconds / 2)
        await registry.close(CloseCode.GOING_AWAY, "server shutting down")

    app.on_startup.append(start)
    app.on_shutdown.append(shutdown)
    return app


async def _flush(registry: RoomRegistry, timeout: float) -> None:
    """Give queued frames a bounded time to reach clients before the close frames."""
    deadline = time.monotonic() + timeout / 2
    while time.monotonic() < deadline:
        pending = sum(
            conn.transport.get_write_buffer_size()
            for room in registry.rooms.values()
            for conn in room.connections
            if not conn.transport.is_closing()
        )
        if pending == 0:
            return
        await asyncio.sleep(0.01)
    log.warning("shutdown flush timed out; closing with data still queued")


async def start_site(runner: web.AppRunner, host: str, port: int) -> asyncio.Server:
    """Listen with the front door: room sockets to RoomSocket, the rest to aiohttp."""
    app = runner.app
    sockets = app[SOCKETS]
    http = runner.server
    assert http is not None, "runner.setup() first"
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: FrontDoor(http, sockets), host, port, reuse_address=True
    )
