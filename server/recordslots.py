"""A room's recording slot in Redis: one recording per room, whichever node starts it.

The same design as the run slots (``runslots``), for the same reasons: a slot
must be taken atomically (two presenters on two nodes press "record" at once:
exactly one wins) and a node that holds nothing must be able to read what goes
on (a joiner there is told "recording, started by Ines"); pub/sub gives
neither. The slot is one hash per room: ``owner`` (the holding node and the
recording's id) and ``record`` (``RecordSlot``: the holding node, the demo id
and title, and the ``RecordState`` joiners on any node are sent). It carries a
TTL that the holding node renews, with the record as it is then (its event
count grows), so the slot of a node killed mid-recording frees itself within
``ttl`` seconds.

Why taking answers with the holder's record: a refused start says who is
recording ("already being recorded (started by Ines)"), the same words as on
the holding node, without a second, racy read.

When Redis does not answer, a node keeps its own rule (one recording per room
on this node) rather than refusing to record a lesson, and its renewal claims
the slot back once Redis answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from rooms.extension import RecordState

from .runslots import RELEASE, RENEW
from .sharedredis import REDIS_ERRORS, SharedRedis

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

WHAT = "record-slot"


class RecordSlot(msgspec.Struct, frozen=True):
    """What the slot says of the room's recording: where it is held and how to announce it."""

    node: str
    #: The recording's id (a stop forwarded to the holder names it, so a later
    #: recording of the same room is never stopped by an old request).
    session: str
    demo: str
    title: str
    state: RecordState


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(RecordSlot)

#: A holder whose record cannot be read (a foreign or older value): still a holder.
UNKNOWN_HOLDER = RecordSlot(node="", session="", demo="", title="", state=RecordState(True))


@dataclass
class _Held:
    owner: str
    record: Callable[[], RecordSlot]
    renewal: asyncio.Task[None] | None = None


class RecordSlots:
    """The recording slots of every room, as seen from this node (``node``: its id in them)."""

    def __init__(self, shared: SharedRedis, ttl: float = 8.0) -> None:
        self.shared = shared
        self.ttl = ttl
        self.node = uuid.uuid4().hex
        self._ttl_ms = max(1, int(ttl * 1000))
        self._take = shared.client.register_script(TAKE)
        self._renew = shared.client.register_script(RENEW)
        self._release = shared.client.register_script(RELEASE)
        #: Slots this node holds, by room id.
        self._held: dict[str, _Held] = {}

    def key(self, room_id: str) -> str:
        return self.shared.key("record", room_id)

    async def take(
        self, room_id: str, session: str, record: Callable[[], RecordSlot]
    ) -> RecordSlot | None:
        """Reserve the room's slot for recording ``session``, renewed with ``record()``
        from then on; None when taken, else the record of whoever holds it.

        None as well when Redis does not answer (this node's own rule then applies).
        """
        held = _Held(f"{self.node}:{session}", record)
        if self.shared.usable:
            try:
                taken, current = await self._take(
                    keys=[self.key(room_id)],
                    args=[held.owner, _encoder.encode(record()), self._ttl_ms],
                )
            except REDIS_ERRORS as exc:
                self.shared.failed(WHAT, exc)
            else:
                if not taken:
                    return _decode(room_id, current) or UNKNOWN_HOLDER
        else:
            self.shared.skipped(WHAT)
        self._held[room_id] = held
        held.renewal = asyncio.get_running_loop().create_task(self._keep(room_id, held))
        return None

    async def release(self, room_id: str, session: str) -> None:
        """The recording ended: the room may be recorded again, on any node."""
        held = self._held.get(room_id)
        if held is None or held.owner != f"{self.node}:{session}":
            return
        del self._held[room_id]
        if held.renewal is not None:
            held.renewal.cancel()
        if not self.shared.usable:
            self.shared.skipped(WHAT)
            return  # it expires by itself
        try:
            await self._release(keys=[self.key(room_id)], args=[held.owner])
        except REDIS_ERRORS as exc:
            self.shared.failed(WHAT, exc)

    async def read(self, room_id: str) -> RecordSlot | None:
        """The room's recording, on whatever node; None: none (or Redis away)."""
        if not self.shared.usable:
            self.shared.skipped(WHAT)
            return None
        try:
            raw = await self.shared.client.hget(self.key(room_id), "record")
        except REDIS_ERRORS as exc:
            self.shared.failed(WHAT, exc)
            return None
        return _decode(room_id, raw) if raw is not None else None

    async def _keep(self, room_id: str, held: _Held) -> None:
        """Renew the slot while the recording goes on (cancelled on release)."""
        while True:
            await asyncio.sleep(self.ttl / 4)
            if self._held.get(room_id) is not held:
                return
            if not await self._renew_once(room_id, held):
                log.warning(
                    "recording slot taken by another node meanwhile",
                    extra={"room": room_id, "owner": held.owner},
                )
                return

    async def _renew_once(self, room_id: str, held: _Held) -> bool:
        """False only when another recording holds the slot now."""
        if not self.shared.usable:
            self.shared.skipped(WHAT)
            return True
        try:
            renewed = await self._renew(
                keys=[self.key(room_id)],
                args=[held.owner, _encoder.encode(held.record()), self._ttl_ms],
            )
        except REDIS_ERRORS as exc:
            self.shared.failed(WHAT, exc)
            return True
        return bool(renewed)

    async def close(self) -> None:
        """Stop renewing (recordings were stopped first; their slots were released or expire)."""
        tasks = [h.renewal for h in self._held.values() if h.renewal is not None]
        self._held.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _decode(room_id: str, raw: bytes | str) -> RecordSlot | None:
    try:
        return _decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):  # a foreign or older value
        log.warning("unreadable recording slot", extra={"room": room_id})
        return None


__all__ = ["UNKNOWN_HOLDER", "RecordSlot", "RecordSlots"]
