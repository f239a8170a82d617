"""The cluster bus over Redis pub/sub: one channel per room, subscribed while it is loaded.

Why pub/sub rather than streams: Postgres already is the durable, ordered
record of every update (each with its gap-free ``seq``), so the bus only has
to be fast; completeness is checked against the log, not entrusted to Redis.
Pub/sub costs one hop and no storage, and a node receives only the rooms it
subscribed to (streams would need one stream per room read by every node, and
trimming). What pub/sub loses, and when, is known: messages sent while a
subscriber's connection is down (a Redis restart, a dropped socket) and those
a publisher could not send. Every one of those cases is noticed:

* a subscription (re)confirmed by Redis makes the room catch up from the log,
  so whatever was sent while it was away is read from Postgres;
* a publisher that failed to send tells the rooms' log heads (``Kind.HEAD``)
  once Redis is back, so a peer that did not miss the subscription still
  learns that it is behind;
* an update past a gap (a seq that skips) is held back and the gap filled;
* a slow safety net: every ``check_seconds`` the node compares each room it
  holds with the log's ``last_seq`` (one query for all of them), which also
  covers a node killed between its commit and its publish.

Messages are sent by one task in pipelines, in the order they were made; the
queue is bounded (a message that does not fit is dropped and its room's head
told later). Awareness lost in an outage is renewed by clients within 15 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec
import redis.asyncio as redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from . import metrics
from .bus import BusUnavailable, Kind, Listener, decode, encode

log = logging.getLogger("opencode_live.rooms")

#: The log's last_seq of each room asked about (``store.Store.room_heads``).
Heads = Callable[[list[str]], Awaitable[dict[str, int]]]

_T = TypeVar("_T")
_KIND_NAMES = {kind: kind.name.lower() for kind in Kind}

#: Compare-and-swap of a room's shared record, published in the same step, so
#: that every node sees the versions in the order Redis stored them.
#: KEYS: record, channel. ARGV: expected version, body, envelope, ttl seconds.
_SWAP = """
local stored = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if stored ~= tonumber(ARGV[1]) then return stored end
redis.call('HSET', KEYS[1], 'v', stored + 1, 'body', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('PUBLISH', KEYS[2], ARGV[3])
return -1
"""
#: A room's shared record outlives the nodes holding it by this much (a class
#: coming back after a break finds its demo where it was), then it is dropped.
STATE_TTL_SECONDS = 12 * 3600
#: A node's count of a room's connections is renewed this often, and stops
#: counting this long after it was written (a killed node's people drop out).
COUNT_RENEW_SECONDS = 5.0
COUNT_VALID_SECONDS = 15.0
_REDIS_ERRORS = (redis.RedisError, OSError, TimeoutError)


class RedisBus:
    shared = True

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "ocl:bus:",
        heads: Heads | None = None,
        check_seconds: float = 5.0,
        subscribe_timeout: float = 2.0,
        max_queued: int = 100_000,
        batch: int = 512,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.node = uuid.uuid4().bytes
        self._heads = heads
        self._check_seconds = check_seconds
        self._subscribe_timeout = subscribe_timeout
        self._max_queued = max_queued
        self._batch = batch
        options = {
            "socket_connect_timeout": 2.0,
            "socket_keepalive": True,
            "retry": Retry(NoBackoff(), 0),
        }
        # One client to publish (its own pool), one connection to receive.
        self._publisher = redis.Redis.from_url(url, socket_timeout=5.0, **options)
        self._receiver = redis.Redis.from_url(url, health_check_interval=5, **options)
        self._pubsub: PubSub | None = None
        #: Rooms the current connection subscribed to when it was made.
        self._resubscribed: set[bytes] = set()
        #: Rooms whose subscription came back, waiting for one head query.
        self._rejoined: dict[bytes, Listener] = {}
        self._rejoining: asyncio.Task[None] | None = None
        self._closing = False
        self._listeners: dict[bytes, Listener] = {}
        self._rooms: dict[bytes, str] = {}
        self._confirmations: dict[bytes, asyncio.Future[None]] = {}
        self._queue: deque[tuple[bytes, bytes]] = deque()
        self._wakeup = asyncio.Event()
        #: Set while nothing is queued or being sent.
        self._idle = asyncio.Event()
        self._idle.set()
        #: Rooms whose messages were not sent, with the highest seq among them.
        self._unsent: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._side_tasks: set[asyncio.Task[None]] = set()
        self.connected = False
        self.error = "not started"
        self._control = f"{prefix}bus".encode()
        self._swap = self._publisher.register_script(_SWAP)
        #: This node's connections per room, and the rooms whose count changed.
        self._counts: dict[str, int] = {}
        self._counts_changed: set[str] = set()
        self._count_wakeup = asyncio.Event()

    def channel(self, room_id: str) -> bytes:
        return f"{self.prefix}room:{room_id}".encode()

    # -- life cycle ------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._receive()),
            loop.create_task(self._send()),
            loop.create_task(self._keep_counts()),
        ]
        if self._heads is not None and self._check_seconds > 0:
            self._tasks.append(loop.create_task(self._check_heads()))

    async def close(self, timeout: float = 2.0) -> None:
        """Send what is queued (bounded: peers catch up from the log anyway), then stop."""
        self._closing = True
        if self._rejoining is not None:
            self._rejoining.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rejoining
        if self.connected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout)
        if self._counts and self.connected:  # this node's people leave the counts now
            with contextlib.suppress(*_REDIS_ERRORS):
                me = self.node.hex()
                async with self._publisher.pipeline(transaction=False) as pipe:
                    for room_id in self._counts:
                        pipe.hdel(self.people_key(room_id), me)
                    await asyncio.wait_for(pipe.execute(), timeout)
        for task in [*self._tasks, *self._side_tasks]:
            task.cancel()
        for task in [*self._tasks, *self._side_tasks]:
            with contextlib.suppress(asyncio.CancelledError, *_REDIS_ERRORS):
                await task
        self._tasks.clear()
        if self._pubsub is not None:
            with contextlib.suppress(*_REDIS_ERRORS):
                await self._pubsub.aclose()
        await self._publisher.aclose()
        await self._receiver.aclose()

    async def check(self, timeout: float) -> str:
        """ "ok" when Redis answers a ping and the subscription connection is up."""
        try:
            await asyncio.wait_for(self._publisher.ping(), timeout)
        except (TimeoutError, *_REDIS_ERRORS) as exc:
            return f"unavailable: {type(exc).__name__}: {exc}"
        return "ok" if self.connected else f"resubscribing: {self.error}"

    # -- head counts -------------------------------------------------------------

    def people_key(self, room_id: str) -> str:
        return f"{self.prefix}people:{room_id}"

    def count(self, room_id: str, connections: int) -> None:
        self._counts[room_id] = connections
        self._counts_changed.add(room_id)
        self._count_wakeup.set()

    async def headcounts(self, room_ids: list[str]) -> dict[str, int]:
        """Each node's count is ``"<connections> <valid until>"`` in the room's hash:
        a node that died stops renewing, and its count stops counting."""
        if not room_ids:
            return {}

        async def read() -> list[dict[bytes, bytes]]:
            async with self._publisher.pipeline(transaction=False) as pipe:
                for room_id in room_ids:
                    pipe.hgetall(self.people_key(room_id))
                return await pipe.execute()

        replies = await self._twice(read)
        now = time.time()
        me = self.node.hex().encode()
        totals: dict[str, int] = {}
        for room_id, fields in zip(room_ids, replies, strict=True):
            total = 0
            for node, value in fields.items():
                count, _, until = value.partition(b" ")
                if node != me and float(until or 0) > now:
                    total += int(count)
            totals[room_id] = total
        return totals

    async def _keep_counts(self) -> None:
        """Write changed counts at once, and every count again before it lapses."""
        me = self.node.hex()
        renewed = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._count_wakeup.wait(), COUNT_RENEW_SECONDS)
            self._count_wakeup.clear()
            if time.monotonic() - renewed >= COUNT_RENEW_SECONDS:
                self._counts_changed.update(self._counts)
                renewed = time.monotonic()
            changed, self._counts_changed = self._counts_changed, set()
            if not changed:
                continue
            until = time.time() + COUNT_VALID_SECONDS
            try:
                async with self._publisher.pipeline(transaction=False) as pipe:
                    for room_id in changed:
                        key = self.people_key(room_id)
                        count = self._counts.get(room_id, 0)
                        if count > 0:
                            pipe.hset(key, me, f"{count} {until:.3f}")
                            pipe.expire(key, int(COUNT_VALID_SECONDS * 2))
                        else:
                            pipe.hdel(key, me)
                            self._counts.pop(room_id, None)
                    await pipe.execute()
            except _REDIS_ERRORS:
                self._counts_changed |= changed  # written when Redis answers again
                await asyncio.sleep(1.0)

    # -- shared room records ---------------------------------------------------

    def state_key(self, room_id: str) -> str:
        return f"{self.prefix}state:{room_id}"

    async def _twice(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """Once more on a dropped connection: after a Redis restart the pool's
        connections are stale and the first command on each fails. (Safe for the
        swap: a swap done whose reply was lost is found stored by the second try.)"""
        try:
            try:
                return await call()
            except (redis.ConnectionError, OSError):
                return await call()
        except _REDIS_ERRORS as exc:
            raise BusUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def load_state(self, room_id: str) -> tuple[int, bytes] | None:
        key = self.state_key(room_id)
        version, body = await self._twice(lambda: self._publisher.hmget(key, ["v", "body"]))
        if version is None or body is None:
            return None
        return int(version), bytes(body)

    async def swap_state(self, room_id: str, version: int, body: bytes) -> int | None:
        envelope = encode(self.node, Kind.STATE, version + 1, body)
        keys = [self.state_key(room_id), self.channel(room_id)]
        args = [version, body, envelope, STATE_TTL_SECONDS]
        stored = await self._twice(lambda: self._swap(keys=keys, args=args))
        if int(stored) < 0:
            metrics.BUS_MESSAGES_OUT.labels(kind="state").inc()
            return None
        return int(stored)

    # -- rooms -----------------------------------------------------------------

    async def attach(self, room_id: str, listener: Listener) -> None:
        channel = self.channel(room_id)
        self._listeners[channel] = listener
        self._rooms[channel] = room_id
        pubsub = self._pubsub
        if pubsub is None or not self.connected:
            return  # subscribed (and caught up) when the connection is back
        confirmed = asyncio.get_running_loop().create_future()
        self._confirmations[channel] = confirmed
        try:
            await pubsub.subscribe(channel)
            await asyncio.wait_for(asyncio.shield(confirmed), self._subscribe_timeout)
        except (TimeoutError, *_REDIS_ERRORS) as exc:
            # The room loads anyway; the (re)subscription will make it catch up.
            log.warning(
                "room subscription not confirmed", extra={"room": room_id, "error": str(exc)}
            )
        finally:
            self._confirmations.pop(channel, None)

    def detach(self, room_id: str) -> None:
        channel = self.channel(room_id)
        self._listeners.pop(channel, None)
        self._rooms.pop(channel, None)
        pubsub = self._pubsub
        if pubsub is not None and self.connected:
            self._side(pubsub.unsubscribe(channel))

    def publish(self, room_id: str, kind: Kind, seq: int, body: bytes) -> None:
        if len(self._queue) >= self._max_queued:
            metrics.BUS_DROPPED.inc()
            self._missed(room_id, kind, seq)
            return
        self._queue.append((self.channel(room_id), encode(self.node, kind, seq, body)))
        metrics.BUS_MESSAGES_OUT.labels(kind=_KIND_NAMES[kind]).inc()
        self._idle.clear()
        self._wakeup.set()

    def _missed(self, room_id: str, kind: Kind, seq: int) -> None:
        if kind is Kind.UPDATE or kind is Kind.HEAD:
            self._unsent[room_id] = max(seq, self._unsent.get(room_id, 0))

    def _side(self, work: Awaitable[object]) -> None:
        async def run() -> None:
            with contextlib.suppress(*_REDIS_ERRORS):
                await work

        task = asyncio.get_running_loop().create_task(run())
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    # -- sending ---------------------------------------------------------------

    async def _send(self) -> None:
        backoff = 0.05
        while True:
            if not self._queue:
                if self._unsent:  # Redis answers again: tell how far the rooms' logs reach
                    unsent, self._unsent = self._unsent, {}
                    for room_id, seq in unsent.items():
                        self.publish(room_id, Kind.HEAD, seq, b"")
                    continue
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
            batch = [self._queue.popleft() for _ in range(min(self._batch, len(self._queue)))]
            try:
                async with self._publisher.pipeline(transaction=False) as pipe:
                    for channel, data in batch:
                        pipe.publish(channel, data)
                    await pipe.execute()
            except _REDIS_ERRORS as exc:
                metrics.BUS_DROPPED.inc(len(batch))
                for channel, data in batch:
                    self._forget(channel, data)
                log.warning("bus publish failed", extra={"error": str(exc), "dropped": len(batch)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.05

    def _forget(self, channel: bytes, data: bytes) -> None:
        room_id = channel.decode()[len(self.prefix) + len("room:") :]
        try:
            envelope = decode(data)
        except msgspec.MsgspecError:
            return
        self._missed(room_id, Kind(envelope.kind), envelope.seq)

    # -- receiving -------------------------------------------------------------

    async def _receive(self) -> None:
        backoff = 0.05
        while True:
            pubsub = self._receiver.pubsub()
            self._pubsub = pubsub
            try:
                self._resubscribed = set(self._listeners)
                await pubsub.subscribe(self._control, *self._resubscribed)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._handle(message)
                        backoff = 0.05
            except asyncio.CancelledError:
                raise
            except _REDIS_ERRORS as exc:
                if self.connected:
                    log.warning("bus connection lost", extra={"error": str(exc)})
                self.connected = False
                metrics.BUS_CONNECTED.set(0)
                self.error = f"{type(exc).__name__}: {exc}"
            finally:
                self._pubsub = None
                with contextlib.suppress(*_REDIS_ERRORS):
                    await pubsub.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def _handle(self, message: dict[str, object]) -> None:
        kind = message.get("type")
        channel = message.get("channel")
        if not isinstance(channel, bytes):
            return
        if kind == "subscribe":
            if channel == self._control:
                if not self.connected:
                    log.info("bus connected", extra={"redis": _safe(self.url)})
                self.connected = True
                self.error = ""
                metrics.BUS_CONNECTED.set(1)
                # Rooms loaded while the connection was being made: subscribe them too.
                missing = set(self._listeners) - self._resubscribed
                if missing and self._pubsub is not None:
                    self._side(self._pubsub.subscribe(*missing))
                return
            confirmed = self._confirmations.get(channel)
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(None)  # a loading room: its load reads the log next
            else:
                listener = self._listeners.get(channel)
                if listener is not None:
                    self._rejoined[channel] = listener
                    if self._rejoining is None:
                        self._rejoining = asyncio.get_running_loop().create_task(self._rejoin())
            return
        if kind != "message":
            return
        listener = self._listeners.get(channel)
        data = message.get("data")
        if listener is None or not isinstance(data, bytes):
            return
        try:
            envelope = decode(data)
            kind_of = Kind(envelope.kind)
        except (msgspec.MsgspecError, ValueError):
            metrics.ERRORS.labels(kind="bad_bus_message").inc()
            return
        if envelope.node == self.node:
            return
        metrics.BUS_MESSAGES_IN.labels(kind=_KIND_NAMES[kind_of]).inc()
        metrics.BUS_LAG_SECONDS.observe(max(0.0, time.time() - envelope.sent))
        try:
            listener.received(kind_of, envelope.seq, envelope.body)
        except Exception:
            metrics.ERRORS.labels(kind="bus_delivery").inc()
            log.exception("bus message not delivered", extra={"room": self._rooms.get(channel)})

    async def _rejoin(self) -> None:
        """Resubscribed rooms learn where their logs end: one query for all of them,
        rather than one read of each room's log (thousands, after a Redis restart)."""
        try:
            await asyncio.sleep(0.05)  # the rest of the burst of confirmations
            batch, self._rejoined = self._rejoined, {}
            heads: dict[str, int] | None = None
            if self._heads is not None:
                try:
                    heads = await self._heads([self._rooms.get(c, "") for c in batch])
                except Exception as exc:  # each room reads its own log instead
                    log.warning("bus head check failed", extra={"error": str(exc)})
            for channel, listener in batch.items():
                if self._listeners.get(channel) is listener:
                    room_id = self._rooms.get(channel, "")
                    listener.resubscribed(heads.get(room_id, 0) if heads is not None else None)
        finally:
            self._rejoining = None
            if self._rejoined and not self._closing:
                self._rejoining = asyncio.get_running_loop().create_task(self._rejoin())

    # -- safety net ------------------------------------------------------------

    async def _check_heads(self) -> None:
        assert self._heads is not None
        while True:
            await asyncio.sleep(self._check_seconds)
            rooms = dict(self._listeners)
            if not rooms:
                continue
            try:
                heads = await self._heads([self._rooms[channel] for channel in rooms])
            except Exception as exc:
                log.warning("bus head check failed", extra={"error": str(exc)})
                continue
            for channel, listener in rooms.items():
                seq = heads.get(self._rooms.get(channel, ""))
                if seq is not None and self._listeners.get(channel) is listener:
                    listener.expect(seq)


def _safe(url: str) -> str:
    """The URL without a password, for logs."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"
