"""The cluster bus: what one node's rooms tell the same rooms on other nodes.

A room's updates (with their ``seq`` from the durable log), awareness updates
and extension broadcasts go out on the bus from the node that made them; every
other node holding the room delivers them to its connections. The bus itself
promises nothing about delivery: completeness comes from the log (see
``rooms.cluster``, which notices gaps and catches up from Postgres).

Two implementations: :class:`LocalBus`, the default for one process (nothing
leaves the process, and rooms behave exactly as without a bus), and
``rooms.redisbus.RedisBus`` when ``REDIS_URL`` is set.
"""

from __future__ import annotations

import enum
import time
from typing import Protocol

import msgspec


class Kind(enum.IntEnum):
    """What a bus message carries."""

    #: A stored update, as the y-websocket sync-update message peers were sent.
    UPDATE = 0
    #: An awareness message (y-websocket message type 1), as relayed to peers.
    AWARENESS = 1
    #: A room extension message (reserved type), as broadcast to opted-in peers.
    ROOM = 2
    #: "The room's log reaches ``seq``" without the update: after messages were lost.
    HEAD = 3
    #: "Tell me the room's presence": a node that just loaded the room, or resubscribed.
    QUERY_AWARENESS = 4
    #: A room's shared demo record (``rooms.sharedstate``); ``seq`` is its version.
    STATE = 5
    #: For a room service on the node that holds the thing (a run's input, a stop...):
    #: ``body`` is ``[tag, payload]`` (``RemoteService``).
    SERVICE = 6
    #: "The room's log is folded into a snapshot up to ``seq``": count rows anew.
    COMPACTED = 7


class Envelope(msgspec.Struct, array_like=True, frozen=True):
    """One bus message: compact (a MessagePack array), decoded once per node."""

    node: bytes
    kind: int
    seq: int
    #: Sender's wall clock (seconds): the receiver's lag figure.
    sent: float
    body: bytes


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Envelope)


def encode(node: bytes, kind: Kind, seq: int, body: bytes) -> bytes:
    return _encoder.encode(Envelope(node, int(kind), seq, time.time(), body))


def decode(data: bytes) -> Envelope:
    """Raises msgspec.DecodeError / ValidationError on a foreign or corrupt message."""
    return _decoder.decode(data)


class BusUnavailable(Exception):
    """The bus could not be asked (Redis away): the caller goes on with this node alone."""


class Listener(Protocol):
    """A loaded room's end of the bus (``rooms.cluster.RoomLink``)."""

    def received(self, kind: Kind, seq: int, body: bytes) -> None:
        """A message from another node."""
        ...

    def resubscribed(self, head: int | None) -> None:
        """The subscription is (again) in place: anything before it may have been missed.

        ``head``: where the room's log ended once it was in place (None: unknown,
        so read the log to find out).
        """
        ...

    def expect(self, seq: int) -> None:
        """The room's log is known to reach ``seq``."""
        ...


class Bus(Protocol):
    #: False: one process, nothing to share (rooms skip all cluster bookkeeping).
    shared: bool

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def attach(self, room_id: str, listener: Listener) -> None:
        """Subscribe to the room (bounded wait for the subscription); never raises."""
        ...

    def detach(self, room_id: str) -> None:
        """The room left this node's memory: stop receiving its messages."""
        ...

    def publish(self, room_id: str, kind: Kind, seq: int, body: bytes) -> None:
        """Send to the other nodes holding the room; never blocks, never raises."""
        ...

    async def check(self, timeout: float) -> str:
        """ "ok", or why the bus is not working now (for /readyz)."""
        ...

    def count(self, room_id: str, connections: int) -> None:
        """This node's number of connections to the room now (for ``headcounts``)."""
        ...

    async def headcounts(self, room_ids: list[str]) -> dict[str, int]:
        """Connections to each room on the other nodes; raises BusUnavailable."""
        ...

    async def load_state(self, room_id: str) -> tuple[int, bytes] | None:
        """The room's shared record and its version (None: none yet); raises BusUnavailable."""
        ...

    async def swap_state(self, room_id: str, version: int, body: bytes) -> int | None:
        """Store ``body`` as version ``version + 1`` if ``version`` is what is stored, and
        publish it (``Kind.STATE``) in the same step; None when done, else the stored
        version (someone else changed it first). Raises BusUnavailable."""
        ...


class LocalBus:
    """One process: rooms live only here, so there is nobody to tell."""

    shared = False

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def attach(self, room_id: str, listener: Listener) -> None:
        return None

    def detach(self, room_id: str) -> None:
        return None

    def publish(self, room_id: str, kind: Kind, seq: int, body: bytes) -> None:
        return None

    async def check(self, timeout: float) -> str:
        return "ok"

    def count(self, room_id: str, connections: int) -> None:
        return None

    async def headcounts(self, room_ids: list[str]) -> dict[str, int]:
        return {}

    async def load_state(self, room_id: str) -> tuple[int, bytes] | None:
        return None

    async def swap_state(self, room_id: str, version: int, body: bytes) -> int | None:
        return None
