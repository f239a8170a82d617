"""The Redis client a node uses for state shared with the other nodes (not the bus).

Why a client of its own rather than the bus's: the bus publishes from a queue
and never waits on Redis, while shared state (a room's run slot, hourly
allowances) is read and written in the middle of a request. Those calls must
be short and must never hang a request when Redis is away, so this client has
short timeouts, no retries, and a breaker: after a failure, Redis is not asked
again for ``pause`` seconds and callers use their local fallback at once
instead of each waiting for a timeout. Every fallback is counted
(``opencode_live_shared_state_fallbacks_total``).
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as redis
from prometheus_client import Counter
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

log = logging.getLogger("opencode_live.server")

#: What a call to Redis may raise when Redis is away or slow.
REDIS_ERRORS = (redis.RedisError, OSError, TimeoutError)

FALLBACKS = Counter(
    "opencode_live_shared_state_fallbacks_total",
    "Shared state (run slots, hourly limits) handled by this node alone because Redis "
    "did not answer",
    ["what"],
)


class SharedRedis:
    """A Redis client with short timeouts, and a breaker that remembers a recent failure."""

    def __init__(self, url: str, *, prefix: str, timeout: float = 0.5, pause: float = 2.0) -> None:
        #: Every key this node writes starts with it (derived from the bus prefix, so
        #: deployments, and tests, sharing one Redis do not collide).
        self.prefix = prefix
        self.client = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self.pause = pause
        self._down_until = 0.0

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    @property
    def usable(self) -> bool:
        """False for ``pause`` seconds after a failure: do without Redis meanwhile."""
        return time.monotonic() >= self._down_until

    def failed(self, what: str, exc: BaseException) -> None:
        """Redis did not answer: count it, and use the fallback for a while."""
        FALLBACKS.labels(what=what).inc()
        if self.usable:  # one log line per outage, not per request
            log.warning(
                "shared state unavailable: this node decides alone for now",
                extra={"what": what, "error": str(exc) or type(exc).__name__},
            )
        self._down_until = time.monotonic() + self.pause

    def skipped(self, what: str) -> None:
        """A call not even tried (the breaker is open): counted like a failure."""
        FALLBACKS.labels(what=what).inc()

    async def close(self) -> None:
        await self.client.aclose()


def state_prefix(bus_prefix: str) -> str:
    """Keys of shared state, next to the bus's channels (``ocl:bus:`` → ``ocl:bus:state:``)."""
    return f"{bus_prefix}state:"


__all__ = ["FALLBACKS", "REDIS_ERRORS", "SharedRedis", "state_prefix"]
