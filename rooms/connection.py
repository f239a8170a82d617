"""One client's socket as the room sees it: a transport to write frames to.

The send queue is the transport's own write buffer, bounded in bytes: a client
that falls behind by more than ``send_queue_bytes`` is closed with 1013 rather
than letting the buffer grow without end or dropping updates silently.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Iterable

from . import metrics
from .access import Person, RoomRole
from .closecodes import CloseCode
from .framing import binary_frame

log = logging.getLogger("opencode_live.rooms")

#: Starts closing the socket with a code and a reason; the server decides how,
#: since only it knows whether its reader is inside a receive right now.
Closer = Callable[[int, str], None]

_ids = itertools.count(1)
_PACE_POLL_SECONDS = 0.005


class Connection:
    __slots__ = (
        "_closer",
        "closing",
        "controlled",
        "extension",
        "id",
        "last_seen",
        "name",
        "person",
        "role",
        "send_queue_bytes",
        "transport",
    )

    def __init__(
        self,
        transport: asyncio.WriteTransport,
        closer: Closer,
        *,
        send_queue_bytes: int,
        person: Person,
        role: RoomRole,
        extension: bool = False,
        name: str | None = None,
    ) -> None:
        self.id = next(_ids)
        self.transport = transport
        self._closer = closer
        self.send_queue_bytes = send_queue_bytes
        self.extension = extension
        self.name = name
        #: Who is connected, and their role in the room (re-checked when it changes).
        self.person = person
        self.role = role
        #: Awareness client ids this connection announced; removed when it leaves.
        self.controlled: set[int] = set()
        self.closing = False
        #: When a frame (pongs included) last arrived: the server's heartbeat reads it.
        self.last_seen = time.monotonic()

    def __repr__(self) -> str:
        return f"<Connection {self.id}{' closing' if self.closing else ''}>"

    def send_frame(self, frame: bytes) -> bool:
        """Queue a pre-built frame; False when the connection is gone or now closed."""
        if self.closing:
            return False
        transport = self.transport
        if transport.is_closing():
            self.closing = True
            return False
        if transport.get_write_buffer_size() + len(frame) > self.send_queue_bytes:
            metrics.SLOW_CONSUMERS.inc()
            log.warning(
                "slow consumer closed",
                extra={"conn": self.id, "queued": transport.get_write_buffer_size()},
            )
            self.close(CloseCode.TRY_AGAIN_LATER, "slow consumer: send queue full")
            return False
        transport.write(frame)
        return True

    def send(self, message: bytes) -> bool:
        frame = binary_frame(message)
        if self.send_frame(frame):
            metrics.MESSAGES_OUT.inc()
            metrics.BYTES_OUT.inc(len(frame))
            return True
        return False

    async def send_paced(self, messages: Iterable[bytes], timeout: float) -> None:
        """Send a long series (a big document's sync) without filling the queue.

        Each piece waits until the queue is down to a quarter of its bound, so
        live updates sent meanwhile still fit; a client that does not drain
        within ``timeout`` seconds is a slow consumer.
        """
        low_water = self.send_queue_bytes // 4
        deadline = time.monotonic() + timeout
        for message in messages:
            while self.transport.get_write_buffer_size() > low_water:
                if self.closing or self.transport.is_closing():
                    return
                if time.monotonic() > deadline:
                    metrics.SLOW_CONSUMERS.inc()
                    self.close(CloseCode.TRY_AGAIN_LATER, "slow consumer: initial sync timed out")
                    return
                await asyncio.sleep(_PACE_POLL_SECONDS)
            if not self.send(message):
                return

    def close(self, code: int, reason: str) -> None:
        """Close with a code and a reason; nothing more is sent to this client."""
        if self.closing:
            return
        self.closing = True
        metrics.CLOSES.labels(code=str(int(code))).inc()
        self._closer(int(code), reason)
