"""A room's run slot in Redis: one run per room, whichever node the request reaches.

A ``roomslots.RoomSlots`` (how and why it is in Redis, renewed, and done
without when Redis does not answer) whose holder is a run and whose record,
``SlotRecord``, is what a joiner on any node is told: ``RunStarted``, once the
program started (``announce``); a run still starting is told of to nobody.
"""

from __future__ import annotations

import msgspec

from rooms.extension import RunStarted

from .roomslots import RoomSlots
from .sharedredis import SharedRedis


class SlotRecord(msgspec.Struct, frozen=True):
    """What the slot says of the run: where it is, and (once started) how to announce it."""

    node: str
    run: str
    started: RunStarted | None = None


class RunSlots(RoomSlots[SlotRecord]):
    """The run slots of every room, as seen from this node (``node``: its id in them)."""

    def __init__(self, shared: SharedRedis, ttl: float = 8.0) -> None:
        super().__init__(shared, "run", SlotRecord, ttl=ttl)

    async def take(self, room_id: str, run_id: str) -> bool:
        """Reserve the room's slot for ``run_id``; False: another run (any node) has it.

        True as well when Redis does not answer (this node's own rule then applies).
        """
        record = SlotRecord(self.node, run_id)
        taken, _ = await self.claim(room_id, run_id, lambda: record)
        return taken

    async def announce(self, room_id: str, started: RunStarted) -> None:
        """The run started: joiners on every node are told about it from now on."""
        record = SlotRecord(self.node, started.run, started)
        await self.update(room_id, started.run, lambda: record)


__all__ = ["RunSlots", "SlotRecord"]
