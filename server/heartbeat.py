"""One ping sweep for every socket, instead of a timer per socket.

aiohttp's own heartbeat keeps a timer and callbacks for each WebSocket; at
thousands of idle classroom connections that is a good part of their memory.
One task walks the rooms every interval instead: a connection that has sent
nothing (not even a pong) for two intervals is dropped, the others get a ping.
"""

from __future__ import annotations

import asyncio
import logging
import time

from rooms import RoomRegistry, metrics

log = logging.getLogger("opencode_live.server")

#: FIN + ping, no payload: the same two bytes for every socket.
PING_FRAME = b"\x89\x00"


def sweep(registry: RoomRegistry, interval: float, now: float | None = None) -> int:
    """Ping live connections and drop silent ones; returns how many were dropped."""
    now = time.monotonic() if now is None else now
    dropped = 0
    for room in list(registry.rooms.values()):
        for conn in list(room.connections):
            transport = conn.transport
            if conn.closing or transport.is_closing():
                continue
            if now - conn.last_seen > 2 * interval:
                dropped += 1
                metrics.ERRORS.labels(kind="heartbeat_timeout").inc()
                log.info("heartbeat timeout", extra={"room": room.id, "conn": conn.id})
                transport.abort()
            else:
                transport.write(PING_FRAME)
    return dropped


async def run(registry: RoomRegistry, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        sweep(registry, interval)
