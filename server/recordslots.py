"""A room's recording slot in Redis: one recording per room, whichever node starts it.

A ``roomslots.RoomSlots`` (how and why it is in Redis, renewed, and done
without when Redis does not answer) whose holder is a recording and whose
record, ``RecordSlot``, is the holding node, the demo id and title, and the
``RecordState`` joiners on any node are sent. It is renewed with the record as
it is then (its event count grows); a refused start is answered with the
holder's record, so it says who is recording.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from rooms.extension import RecordState

from .roomslots import RoomSlots
from .sharedredis import SharedRedis


class RecordSlot(msgspec.Struct, frozen=True):
    """What the slot says of the room's recording: where it is held and how to announce it."""

    node: str
    #: The recording's id (a stop forwarded to the holder names it, so a later
    #: recording of the same room is never stopped by an old request).
    session: str
    demo: str
    title: str
    state: RecordState


#: A holder whose record cannot be read (a foreign or older value): still a holder.
UNKNOWN_HOLDER = RecordSlot(node="", session="", demo="", title="", state=RecordState(True))


class RecordSlots(RoomSlots[RecordSlot]):
    """The recording slots of every room, as seen from this node (``node``: its id in them)."""

    def __init__(self, shared: SharedRedis, ttl: float = 8.0) -> None:
        super().__init__(shared, "record", RecordSlot, noun="recording", ttl=ttl)

    async def take(
        self, room_id: str, session: str, record: Callable[[], RecordSlot]
    ) -> RecordSlot | None:
        """Reserve the room's slot for recording ``session``, renewed with ``record()``
        from then on; None when taken, else the record of whoever holds it.

        None as well when Redis does not answer (this node's own rule then applies).
        """
        taken, holder = await self.claim(room_id, session, record)
        if taken:
            return None
        return holder if holder is not None else UNKNOWN_HOLDER


__all__ = ["UNKNOWN_HOLDER", "RecordSlot", "RecordSlots"]
