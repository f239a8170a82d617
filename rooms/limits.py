"""The limits a room server enforces; the server's settings fill them in."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class RoomLimits:
    #: Largest WebSocket message accepted from a client, and the largest piece
    #: the initial sync of a big document is cut into.
    max_message_bytes: int = 16 * MiB
    #: Bytes queued for one client before it counts as a slow consumer and is
    #: closed with 1013. Must hold at least one message of the maximum size.
    send_queue_bytes: int = 64 * MiB
    max_connections_per_room: int = 1000
    max_rooms: int = 10_000
    #: Seconds a room stays in memory after its last connection leaves.
    unload_grace_seconds: float = 30.0
    #: Seconds without an awareness renewal after which a client's state is
    #: dropped (y-protocols' outdatedTimeout).
    awareness_timeout_seconds: float = 30.0
    #: Seconds a client may take to drain the initial sync of a big document.
    initial_sync_timeout_seconds: float = 300.0
    #: Fold a room's log into a snapshot once this many updates or bytes follow the last one.
    compact_after_updates: int = 1000
    compact_after_bytes: int = 4 * MiB

    def __post_init__(self) -> None:
        if self.send_queue_bytes < 2 * self.max_message_bytes:
            raise ValueError(
                "send_queue_bytes must be at least twice max_message_bytes "
                f"({self.send_queue_bytes} < 2 x {self.max_message_bytes})"
            )
