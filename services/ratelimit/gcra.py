"""GCRA (a token bucket kept as one timestamp): the Redis script and the in-process twin.

Hand-written because the limiter must also return the RateLimit-* header values, which the
libraries we looked at do not expose.
"""

import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    """One limit check: allowed or not, and what the RateLimit-* headers say."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: float
    retry_after_s: float


# Atomic in Redis, on Redis's own clock so every replica agrees. Takes up to ARGV[3] tokens at
# once (a lease, services.ratelimit.limiter) and returns how many it granted (0: refused).
GCRA_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3] or 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local available = math.floor((now + interval * burst - tat) / interval)
if available < 1 then
  return {0, 0, tat - now, tat + interval - interval * burst - now}
end
local granted = math.min(want, available)
local new_tat = tat + interval * granted
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
return {granted, available - granted, new_tat - now, 0}
"""


class LocalBuckets:
    """The same GCRA in process memory, for one process (bounded number of keys)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._tat: OrderedDict[str, float] = OrderedDict()
        self._max_keys = max_keys

    def hit(self, key: str, rate: float, burst: int) -> Decision:
        """Take one request from `key`'s bucket."""
        now = time.monotonic() * 1000
        interval = 1000.0 / rate
        tat = max(self._tat.get(key, now), now)
        new_tat = tat + interval
        allow_at = new_tat - interval * burst
        if allow_at > now:
            return Decision(False, burst, 0, (tat - now) / 1000, (allow_at - now) / 1000)
        self._tat[key] = new_tat
        self._tat.move_to_end(key)
        while len(self._tat) > self._max_keys:
            self._tat.popitem(last=False)
        return Decision(True, burst, int((now - allow_at) // interval), (new_tat - now) / 1000, 0)
