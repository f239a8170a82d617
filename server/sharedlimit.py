"""Hourly limits counted in Redis, so that N nodes give a user one allowance, not N.

The algorithm is the same generic cell rate algorithm as ``ratelimit.HourlyLimit``
(one number per user: the theoretical arrival time of the next request), run
as a Lua script so that reading and moving it is one atomic step whatever
node asks. The clock is Redis's own (``TIME``): the nodes' clocks may differ,
the one Redis has only one. Each key expires once its allowance has fully
recovered, so idle users cost nothing.

When Redis does not answer, the node counts on its own ``HourlyLimit`` (the
behaviour of a single process) rather than refusing or waiting: a Redis outage
makes the limit looser for a while, never the service unavailable.
"""

from __future__ import annotations

from collections.abc import Hashable

from .ratelimit import HourlyLimit
from .sharedredis import REDIS_ERRORS, SharedRedis

#: KEYS[1]: the user's key. ARGV: interval, period (seconds), and optionally "now"
#: (seconds; tests) instead of Redis's clock. Returns nil when allowed, else the
#: seconds to wait as a string (Lua numbers would be cut to integers).
GCRA = """
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
local new_tat = tat + interval
if new_tat - now > period then
  return tostring(new_tat - period - now)
end
redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX',
           math.max(1, math.ceil((new_tat - now) * 1000)))
return false
"""


class SharedHourlyLimit(HourlyLimit):
    """``HourlyLimit`` whose ``spend`` counts in Redis, shared by every node.

    The inherited ``hit`` is this node's own count: the fallback when Redis is
    away, and what callers that cannot wait (synchronous code) still use.
    """

    def __init__(self, shared: SharedRedis, name: str, limit: int, period: float = 3600.0) -> None:
        super().__init__(limit, period)
        self.shared = shared
        self.name = name
        self._script = shared.client.register_script(GCRA)

    def key(self, key: Hashable) -> str:
        return self.shared.key("limit", self.name, str(key))

    async def spend(self, key: Hashable, now: float | None = None) -> float | None:
        """Count one request across the nodes; None when allowed, else seconds to wait."""
        what = f"limit:{self.name}"
        if not self.shared.usable:
            self.shared.skipped(what)
            return self.hit(key)
        args: list[float] = [self._interval, self.period]
        if now is not None:
            args.append(now)
        try:
            wait = await self._script(keys=[self.key(key)], args=args)
        except REDIS_ERRORS as exc:
            self.shared.failed(what, exc)
            return self.hit(key)
        return None if wait is None else float(wait)


__all__ = ["GCRA", "SharedHourlyLimit"]
