"""A room's run slot in Redis: one run per room, whichever node the request reaches.

Why Redis and not the bus: a slot must be taken atomically (two nodes asked at
the same moment: exactly one wins), and a node that joins later must be able
to read what is going on; pub/sub gives neither. The slot is one hash per
room: ``owner`` (the holding node and the run's id) and ``record`` (what a
joiner on any node is told: ``RunStarted``, once the program started). It
carries a TTL that the holding node renews while the run goes on, so the slot
of a node killed mid-run frees itself within ``ttl`` seconds.

When Redis does not answer, a node keeps its own rule (one run per room on
this node) rather than refusing runs, and its renewal claims the slot back
once Redis answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass

import msgspec

from rooms.extension import RunStarted

from .sharedredis import REDIS_ERRORS, SharedRedis

log = logging.getLogger("opencode_live.server")

#: Take the slot if it is free. KEYS[1]: slot; ARGV: owner, record, ttl (ms).
TAKE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'record', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

#: Renew (or take back, when it expired meanwhile) the slot this owner holds, with
#: its current record; 0 when another run holds it now.
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


class SlotRecord(msgspec.Struct, frozen=True):
    """What the slot says of the run: where it is, and (once started) how to announce it."""

    node: str
    run: str
    started: RunStarted | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(SlotRecord)


@dataclass
class _Held:
    owner: str
    record: bytes
    renewal: asyncio.Task[None] | None = None


class RunSlots:
    """The run slots of every room, as seen from this node (``node``: its id in them)."""

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
        return self.shared.key("run", room_id)

    async def take(self, room_id: str, run_id: str) -> bool:
        """Reserve the room's slot for ``run_id``; False: another run (any node) has it.

        True as well when Redis does not answer (this node's own rule then applies).
        """
        held = _Held(f"{self.node}:{run_id}", _encoder.encode(SlotRecord(self.node, run_id)))
        if self.shared.usable:
            try:
                taken = await self._take(
                    keys=[self.key(room_id)], args=[held.owner, held.record, self._ttl_ms]
                )
            except REDIS_ERRORS as exc:
                self.shared.failed("run-slot", exc)
            else:
                if not taken:
                    return False
        else:
            self.shared.skipped("run-slot")
        self._hold(room_id, held)
        return True

    async def announce(self, room_id: str, started: RunStarted) -> None:
        """The run started: joiners on every node are told about it from now on."""
        held = self._held.get(room_id)
        if held is None or held.owner != f"{self.node}:{started.run}":
            return
        held.record = _encoder.encode(SlotRecord(self.node, started.run, started))
        await self._renew_once(room_id, held)

    async def release(self, room_id: str, run_id: str) -> None:
        """The run ended (or never started): the room may run again, on any node."""
        held = self._held.get(room_id)
        if held is None or held.owner != f"{self.node}:{run_id}":
            return
        del self._held[room_id]
        if held.renewal is not None:
            held.renewal.cancel()
        if not self.shared.usable:
            self.shared.skipped("run-slot")
            return  # it expires by itself
        try:
            await self._release(keys=[self.key(room_id)], args=[held.owner])
        except REDIS_ERRORS as exc:
            self.shared.failed("run-slot", exc)

    async def read(self, room_id: str) -> SlotRecord | None:
        """The run going on in the room, on whatever node; None: none (or Redis away)."""
        if not self.shared.usable:
            self.shared.skipped("run-slot")
            return None
        try:
            raw = await self.shared.client.hget(self.key(room_id), "record")
        except REDIS_ERRORS as exc:
            self.shared.failed("run-slot", exc)
            return None
        if raw is None:
            return None
        try:
            return _decoder.decode(raw)
        except msgspec.DecodeError:  # a foreign or older value: treat as no run
            log.warning("unreadable run slot", extra={"room": room_id})
            return None

    def _hold(self, room_id: str, held: _Held) -> None:
        self._held[room_id] = held
        held.renewal = asyncio.get_running_loop().create_task(self._keep(room_id, held))

    async def _keep(self, room_id: str, held: _Held) -> None:
        """Renew the slot while the run goes on (cancelled on release)."""
        while True:
            await asyncio.sleep(self.ttl / 4)
            if self._held.get(room_id) is not held:
                return
            if not await self._renew_once(room_id, held):
                log.warning(
                    "run slot taken by another node meanwhile",
                    extra={"room": room_id, "owner": held.owner},
                )
                return

    async def _renew_once(self, room_id: str, held: _Held) -> bool:
        """False only when another run holds the slot now."""
        if not self.shared.usable:
            self.shared.skipped("run-slot")
            return True
        try:
            renewed = await self._renew(
                keys=[self.key(room_id)], args=[held.owner, held.record, self._ttl_ms]
            )
        except REDIS_ERRORS as exc:
            self.shared.failed("run-slot", exc)
            return True
        return bool(renewed)

    async def close(self) -> None:
        """Stop renewing (runs were stopped first; their slots were released or expire)."""
        tasks = [h.renewal for h in self._held.values() if h.renewal is not None]
        self._held.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


__all__ = ["RunSlots", "SlotRecord"]
