"""A room's slot in Redis: one run (``runslots``), or one recording (``recordslots``),
per room, whichever node starts it.

Why Redis and not the bus: a slot must be taken atomically (two nodes asked at
the same moment: exactly one wins), and a node that holds nothing must be able
to read what goes on (a joiner there is told of the run or the recording);
pub/sub gives neither. The slot is one hash per room: ``owner`` (the holding
node and the holder's id: the run's or the recording's) and ``record`` (what
any node is told of it, a msgspec struct that names the holding node). It
carries a TTL that the holding node renews every ``ttl / 4`` with the record as
it is then (a run's gains its start, a recording's its event count), so the
slot of a node killed mid-way frees itself within ``ttl`` seconds.

Why taking answers with the holder's record: a refused start can say who holds
the room ("already being recorded (started by Ines)"), the same words as on
the holding node, without a second, racy read.

When Redis does not answer, a node keeps its own rule (one per room on this
node) rather than refusing, and its renewal claims the slot back once Redis
answers again; every call done without Redis is counted under the slot's
label (``run-slot``, ``record-slot``: ``sharedredis.FALLBACKS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

import msgspec

from .sharedredis import REDIS_ERRORS, SharedRedis

if TYPE_CHECKING:
    from rooms import Connection, Room
    from rooms.extension import ServerMessage

log = logging.getLogger("opencode_live.server")

#: Take the slot if it is free, else answer with the holder's record.
#: KEYS[1]: slot; ARGV: owner, record, ttl (ms). Returns {1, ''} or {0, record}.
TAKE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, redis.call('HGET', KEYS[1], 'record') or ''}
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'record', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, ''}
"""

#: Renew (or take back, when it expired meanwhile) the slot this owner holds, with
#: its current record; 0 when another holder has it now.
RENEW = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'record', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

#: Free the slot if this owner still holds it.
RELEASE = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class NodeRecord(Protocol):
    """What every slot's record says: the node that holds the slot."""

    @property
    def node(self) -> str: ...


RecordT = TypeVar("RecordT", bound=NodeRecord)
T = TypeVar("T")


@dataclass
class _Held(Generic[RecordT]):
    owner: str
    #: The record as it is now (called at every renewal).
    record: Callable[[], RecordT]
    renewal: asyncio.Task[None] | None = None


class RoomSlots(Generic[RecordT]):
    """The ``kind`` slots of every room (``run``, ``record``: the key's name), as seen
    from this node (``node``: its id in them), their records ``record_type``.

    ``noun`` names the slot in log lines ("recording slot"; ``kind`` by default).
    """

    def __init__(
        self,
        shared: SharedRedis,
        kind: str,
        record_type: type[RecordT],
        *,
        noun: str | None = None,
        ttl: float = 8.0,
    ) -> None:
        self.shared = shared
        self.kind = kind
        self.ttl = ttl
        self.node = uuid.uuid4().hex
        #: The label of calls done without Redis (``sharedredis.FALLBACKS``).
        self.what = f"{kind}-slot"
        self._noun = noun or kind
        self._ttl_ms = max(1, int(ttl * 1000))
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(record_type)
        self._take = shared.client.register_script(TAKE)
        self._renew = shared.client.register_script(RENEW)
        self._release = shared.client.register_script(RELEASE)
        #: Slots this node holds, by room id.
        self._held: dict[str, _Held[RecordT]] = {}

    def key(self, room_id: str) -> str:
        return self.shared.key(self.kind, room_id)

    async def claim(
        self, room_id: str, holder: str, record: Callable[[], RecordT]
    ) -> tuple[bool, RecordT | None]:
        """Reserve the room's slot for ``holder`` (a run's or a recording's id), renewed
        with ``record()`` from then on: (True, None), or (False, the record of whoever
        holds it; None when it cannot be read).

        (True, None) as well when Redis does not answer (this node's own rule then applies).
        """
        held = _Held(self._owner(holder), record)
        answer = await self._redis(
            lambda: self._take(
                keys=[self.key(room_id)],
                args=[held.owner, self._encoder.encode(record()), self._ttl_ms],
            )
        )
        if answer is not None and not answer[0]:
            return False, self._decode(room_id, answer[1])
        self._held[room_id] = held
        held.renewal = asyncio.get_running_loop().create_task(self._keep(room_id, held))
        return True, None

    async def update(self, room_id: str, holder: str, record: Callable[[], RecordT]) -> None:
        """The slot ``holder`` holds says ``record()`` from now on, on every node (renewed
        at once, not at the next renewal)."""
        held = self._held.get(room_id)
        if held is None or held.owner != self._owner(holder):
            return
        held.record = record
        await self._renew_once(room_id, held)

    async def release(self, room_id: str, holder: str) -> None:
        """``holder`` ended (or never began): the room's slot is free again, for any node."""
        held = self._held.get(room_id)
        if held is None or held.owner != self._owner(holder):
            return
        del self._held[room_id]
        if held.renewal is not None:
            held.renewal.cancel()
        # Redis away: the slot expires by itself.
        await self._redis(lambda: self._release(keys=[self.key(room_id)], args=[held.owner]))

    async def read(self, room_id: str) -> RecordT | None:
        """What the room's slot says, whatever node holds it; None: free (or Redis away)."""
        raw = await self._redis(lambda: self.shared.client.hget(self.key(room_id), "record"))
        return None if raw is None else self._decode(room_id, raw)

    async def tell_joiner(
        self,
        room: Room,
        conn: Connection,
        here: Container[str],
        message: Callable[[RecordT], ServerMessage | None],
    ) -> None:
        """A joiner on this node, nothing of the kind here: if another node holds the
        room's slot, send them ``message(record)`` (None: nothing to tell yet).

        Not when they left meanwhile, nor when the room is in ``here`` by then (this
        node's own runs or recordings, by room id: those greet joiners themselves).
        """
        record = await self.read(room.id)
        if (
            record is None
            or record.node == self.node
            or conn not in room.connections
            or room.id in here
        ):
            return
        told = message(record)
        if told is not None:
            room.send_room(conn, told)

    async def close(self) -> None:
        """Stop renewing (what held the slots was stopped first: released, or they expire)."""
        tasks = [h.renewal for h in self._held.values() if h.renewal is not None]
        self._held.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _owner(self, holder: str) -> str:
        return f"{self.node}:{holder}"

    async def _keep(self, room_id: str, held: _Held[RecordT]) -> None:
        """Renew the slot while it is held (cancelled on release)."""
        while True:
            await asyncio.sleep(self.ttl / 4)
            if self._held.get(room_id) is not held:
                return
            if not await self._renew_once(room_id, held):
                log.warning(
                    "%s slot taken by another node meanwhile",
                    self._noun,
                    extra={"room": room_id, "owner": held.owner},
                )
                return

    async def _renew_once(self, room_id: str, held: _Held[RecordT]) -> bool:
        """False only when another holder has the slot now."""
        renewed = await self._redis(
            lambda: self._renew(
                keys=[self.key(room_id)],
                args=[held.owner, self._encoder.encode(held.record()), self._ttl_ms],
            )
        )
        return renewed is None or bool(renewed)

    async def _redis(self, call: Callable[[], Awaitable[T]]) -> T | None:
        """``call()``'s answer; None when Redis is away (the breaker open, or no
        answer), counted under ``what``: the caller then does without."""
        if not self.shared.usable:
            self.shared.skipped(self.what)
            return None
        try:
            return await call()
        except REDIS_ERRORS as exc:
            self.shared.failed(self.what, exc)
            return None

    def _decode(self, room_id: str, raw: bytes | str) -> RecordT | None:
        try:
            return self._decoder.decode(raw)
        except msgspec.DecodeError:  # a foreign or older value (ValidationError included)
            log.warning("unreadable %s slot", self._noun, extra={"room": room_id})
            return None


__all__ = ["RELEASE", "RENEW", "TAKE", "NodeRecord", "RoomSlots"]
