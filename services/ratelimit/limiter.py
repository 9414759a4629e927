"""Shared limits in Redis; per-process limits when Redis is absent or down (by policy)."""

from services.ratelimit.gcra import GCRA_SCRIPT, Decision, LocalBuckets
from services.ratelimit.settings import RateLimitSettings
from services.redis_client import RedisGuard, RedisUnavailable


class RateLimiter:
    """Checks one request against its principal's bucket for a route class."""

    def __init__(self, guard: RedisGuard, settings: RateLimitSettings) -> None:
        self.guard = guard
        self.settings = settings
        self.local = LocalBuckets()
        self._script = (
            guard.client.register_script(GCRA_SCRIPT) if guard.client is not None else None
        )

    async def hit(self, route_class: str, identity: str) -> Decision:
        """The decision for one request; RedisUnavailable when Redis fails and policy rejects."""
        rate, burst = self.settings.rule(route_class)
        key = f"ratelimit:v1:{route_class}:{identity}"
        if self._script is not None and self.guard.usable:
            try:
                allowed, remaining, reset_ms, retry_ms = await self._script(
                    keys=[key], args=[1000.0 / rate, burst]
                )
            except Exception as exc:
                self.guard.failed("rate_limit", exc)
            else:
                self.guard.recovered()
                return Decision(
                    bool(allowed),
                    burst,
                    int(remaining),
                    float(reset_ms) / 1000,
                    float(retry_ms) / 1000,
                )
        if self._script is not None and self.guard.settings.on_failure == "reject":
            raise RedisUnavailable
        return self.local.hit(key, rate, burst)
