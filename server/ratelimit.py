"""Rate limits: per user over an hour for the API and runs, per socket over seconds.

``HourlyLimit`` is the generic cell rate algorithm (one timestamp per user): a
user may spend the whole hour's allowance at once, then one request per
``period / limit`` seconds, and a refusal says exactly when to retry. It
counts in this process; with several nodes, ``sharedlimit.SharedHourlyLimit``
counts the same way in Redis. Callers that can wait use ``spend``, which both
provide, so they need not know which one they hold.
``SocketBudget`` is a pair of token buckets (messages and bytes) a room socket
spends from; it costs a few numbers per connection and no timer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable
from dataclasses import dataclass

#: Past this many users tracked, those whose allowance has fully recovered are forgotten.
PRUNE_AT = 50_000


class HourlyLimit:
    """At most ``limit`` requests per ``period`` seconds for each key."""

    def __init__(self, limit: int, period: float = 3600.0) -> None:
        if limit < 1:
            raise ValueError("a rate limit must allow at least one request")
        self.limit = limit
        self.period = period
        self._interval = period / limit
        #: Per key: the theoretical arrival time of the next request.
        self._tat: dict[Hashable, float] = {}

    def hit(self, key: Hashable, now: float | None = None) -> float | None:
        """Count one request; None when allowed, else the seconds to wait before retrying."""
        now = time.monotonic() if now is None else now
        tat = max(self._tat.get(key, now), now)
        new_tat = tat + self._interval
        if new_tat - now > self.period:
            return new_tat - self.period - now
        self._tat[key] = new_tat
        if len(self._tat) > PRUNE_AT:
            self._prune(now)
        return None

    async def spend(self, key: Hashable) -> float | None:
        """``hit`` now: the same signature as the shared limit's, which asks Redis."""
        return self.hit(key)

    def remaining(self, key: Hashable, now: float | None = None) -> int:
        """Requests the key may still make right now."""
        now = time.monotonic() if now is None else now
        used = max(self._tat.get(key, now), now) - now
        return max(0, math.floor((self.period - used) / self._interval))

    def _prune(self, now: float) -> None:
        self._tat = {k: v for k, v in self._tat.items() if v > now}


def retry_after_header(seconds: float) -> str:
    """Whole seconds, rounded up: retrying earlier would be refused again."""
    return str(max(1, math.ceil(seconds)))


@dataclass(frozen=True, slots=True)
class SocketRates:
    """The per-connection allowance, shared by every socket."""

    messages_per_second: float
    message_burst: float
    bytes_per_second: float
    byte_burst: float


class SocketBudget:
    """What one socket may still send now; refilled from the elapsed time on each spend."""

    __slots__ = ("_bytes", "_messages", "_stamp", "rates")

    def __init__(self, rates: SocketRates, now: float | None = None) -> None:
        self.rates = rates
        self._messages = rates.message_burst
        self._bytes = rates.byte_burst
        self._stamp = time.monotonic() if now is None else now

    def spend(self, size: int, now: float | None = None) -> str | None:
        """Spend one message of ``size`` bytes; None if within budget, else which limit it broke."""
        rates = self.rates
        now = time.monotonic() if now is None else now
        elapsed = now - self._stamp
        self._stamp = now
        messages = min(rates.message_burst, self._messages + elapsed * rates.messages_per_second)
        size_budget = min(rates.byte_burst, self._bytes + elapsed * rates.bytes_per_second)
        if messages < 1:
            self._messages, self._bytes = messages, size_budget
            return f"over {rates.messages_per_second:g} messages per second"
        if size_budget < size:
            self._messages, self._bytes = messages, size_budget
            return f"over {rates.bytes_per_second:g} bytes per second"
        self._messages = messages - 1
        self._bytes = size_budget - size
        return None
