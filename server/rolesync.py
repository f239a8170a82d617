"""Role changes reach connected people on every node, not just the one that made them.

A member removed from a private room, or a room closed to the public, must
lose the room at once wherever they are connected; with several server
processes, their socket may be on any of them. The node that changed the
rules refreshes the roles of its own connections and tells the others
through the bus (``RoomRegistry.tell_service``); each node holding the room
asks the store for the roles of its own connected people, so the store stays
the only judge of who may do what.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from aiohttp import web

from rooms import Connection, Room, RoomRegistry
from rooms.extension import ClientMessage
from store import StoreUnavailable

from .auth import Gate

log = logging.getLogger("opencode_live.server")


class RoleSync:
    """A room service with no messages of its own: it refreshes roles when told."""

    messages: tuple[type, ...] = ()
    #: ``rooms.RemoteService``: the payload is a user id's bytes, or empty for everyone.
    remote_tag = "roles"

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self._tasks: set[asyncio.Task[None]] = set()

    async def changed(self, registry: RoomRegistry, room_id: str, only: uuid.UUID | None) -> None:
        """The room's rules changed for ``only`` (None: for everyone): here, then elsewhere."""
        room = registry.rooms.get(room_id)
        if room is not None:
            await self.refresh(room, only)
        registry.tell_service(room_id, self.remote_tag, only.bytes if only is not None else b"")

    async def refresh(self, room: Room, only: uuid.UUID | None) -> None:
        """Give connected people their new role in the room, or close them out (4403)."""
        people = {
            conn.person.user_id: conn.person
            for conn in room.connections
            if only is None or conn.person.user_id == only
        }
        for person in people.values():
            try:
                role = await self.gate.role_of(person, room.id)
            except StoreUnavailable:
                continue  # they keep their role until the next change or reconnect
            room.set_role(person.user_id, role)

    # -- rooms.RemoteService -----------------------------------------------------

    def remote(self, room: Room, payload: bytes) -> None:
        try:
            only = uuid.UUID(bytes=payload) if payload else None
        except ValueError:
            log.warning("bad role refresh from the bus", extra={"room": room.id})
            return
        task = asyncio.get_running_loop().create_task(self.refresh(room, only))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- rooms.RoomService: nothing to handle, greet or drop -----------------------

    def handle(self, room: Room, conn: Connection, msg: ClientMessage) -> None:
        return None

    def greet(self, room: Room, conn: Connection) -> None:
        return None

    def left(self, room: Room, conn: Connection) -> None:
        return None

    def demo_loaded(self, room: Room) -> None:
        return None

    def room_unloaded(self, room: Room) -> None:
        return None


ROLES = web.AppKey("roles", RoleSync)

__all__ = ["ROLES", "RoleSync"]
