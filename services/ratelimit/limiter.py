"""Shared limits in Redis; per-process limits when Redis is absent or down (by policy).

Leases: a principal's requests would each cost a Redis round trip. Instead a worker takes up to
`lease_size(burst)` tokens from the shared bucket at once and spends them locally, for at most
`RATE_LIMIT_LEASE_S`. The lease is a tenth of the burst, at most `RATE_LIMIT_LEASE_MAX` (16), at
least 1; a burst under 20 gets 1, which is exactly one round trip per request, as without leases.
Near the limit the shared bucket grants only what it has left. The bound, with W workers (all
replicas together) and lease L:

- Tokens leave the shared bucket before they are spent, so over time all workers together never
  admit more than the limit; within a window, admissions can exceed what the bucket allows by the
  tokens held in leases when the window starts: at most W x (L - 1).
- Tokens a worker leased and did not spend before its lease expired are lost: a principal whose
  requests spread over W workers may be refused up to W x (L - 1) requests early per lease period.

Leases apply under `REDIS_ON_FAILURE=local` (the default), which already accepts per-process
limits while Redis is down. `reject` keeps one round trip per request, so requests are refused
exactly while Redis cannot be reached, and /ready says so at the same time.
"""

import time
from collections import OrderedDict
from dataclasses import dataclass

from services.ratelimit.gcra import GCRA_SCRIPT, Decision, LocalBuckets
from services.ratelimit.settings import RateLimitSettings
from services.redis_client import RedisGuard, RedisUnavailable


@dataclass
class _Lease:
    tokens: int  # left to spend locally
    expires_at: float  # time.monotonic()
    remaining: int  # what the shared bucket had left when it was taken
    reset_s: float


class RateLimiter:
    """Checks one request against its principal's bucket for a route class."""

    def __init__(
        self, guard: RedisGuard, settings: RateLimitSettings, *, max_leases: int = 100_000
    ) -> None:
        self.guard = guard
        self.settings = settings
        self.local = LocalBuckets()
        self._script = (
            guard.client.register_script(GCRA_SCRIPT) if guard.client is not None else None
        )
        self._leases: OrderedDict[str, _Lease] = OrderedDict()
        self._max_leases = max_leases

    def lease_size(self, burst: int) -> int:
        """Tokens taken from the shared bucket per round trip. 1 under REDIS_ON_FAILURE=reject,
        which promises refusals exactly while Redis is unreachable (and /ready agreeing): a
        lease would admit requests from tokens leased before Redis went away."""
        if self.guard.settings.on_failure == "reject":
            return 1
        return max(1, min(self.settings.lease_max, burst // 10))

    async def hit(self, route_class: str, identity: str) -> Decision:
        """The decision for one request; RedisUnavailable when Redis fails and policy rejects."""
        rate, burst = self.settings.rule(route_class)
        key = f"ratelimit:v1:{route_class}:{identity}"
        if self._script is not None and self.guard.usable:
            spent = self._spend(key, burst)
            if spent is not None:
                return spent
            want = self.lease_size(burst)
            try:
                granted, remaining, reset_ms, retry_ms = await self._script(
                    keys=[key], args=[1000.0 / rate, burst, want]
                )
            except Exception as exc:
                self.guard.failed("rate_limit", exc)
            else:
                self.guard.recovered()
                granted, remaining, reset_s = int(granted), int(remaining), float(reset_ms) / 1000
                if granted > 1:
                    self._keep(key, _Lease(granted - 1, 0.0, remaining, reset_s))
                return Decision(
                    granted > 0, burst, remaining + max(granted - 1, 0), reset_s, retry_ms / 1000
                )
        if self._script is not None and self.guard.settings.on_failure == "reject":
            raise RedisUnavailable
        return self.local.hit(key, rate, burst)

    def _spend(self, key: str, burst: int) -> Decision | None:
        """One token of this worker's lease on `key`, or None when it has none left."""
        lease = self._leases.get(key)
        if lease is None:
            return None
        if lease.tokens <= 0 or time.monotonic() >= lease.expires_at:
            del self._leases[key]
            return None
        lease.tokens -= 1
        return Decision(True, burst, lease.remaining + lease.tokens, lease.reset_s, 0.0)

    def _keep(self, key: str, lease: _Lease) -> None:
        """Add a new lease's tokens to what this worker holds for `key` (concurrent requests
        that all found the lease empty each bring one back; none of their tokens is dropped)."""
        held = self._leases.get(key)
        if held is not None:
            lease.tokens += held.tokens
        lease.expires_at = time.monotonic() + self.settings.lease_s
        self._leases[key] = lease
        self._leases.move_to_end(key)
        while len(self._leases) > self._max_leases:
            self._leases.popitem(last=False)
