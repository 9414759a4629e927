"""Rate limits and the inference result cache: Redis, shared by every worker and replica, with
in-process fallbacks for a single process (no Redis configured, or Redis down by policy)."""

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from prometheus_client import Counter
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger("services.limits")
REDIS_FAILURES = Counter("redis_failures_total", "Redis calls that failed, by use.", ["use"])
RATE_LIMITED = Counter(
    "rate_limited_total", "Requests refused with 429, by route class.", ["route_class"]
)
CACHE = Counter("inference_cache_total", "Result cache lookups, by outcome.", ["outcome"])


class RedisSettings(BaseSettings):
    """Redis for limits and cache (`REDIS_*`); without a URL both stay in-process."""

    model_config = SettingsConfigDict(env_prefix="REDIS_", extra="ignore")

    url: str | None = Field(default=None, description="redis://host:6379/0")
    timeout_s: float = Field(default=0.25, gt=0)
    on_failure: Literal["local", "reject"] = Field(
        default="local",
        description="Redis down: enforce limits per process (logged, counted, /ready degraded), "
        "or refuse requests with 503.",
    )
    retry_after_failure_s: float = Field(default=2.0, ge=0, description="Circuit breaker pause.")
    cache_enabled: bool = True
    cache_ttl_s: int = Field(default=300, ge=1)
    local_cache_entries: int = Field(default=10_000, ge=0)


class RateLimitSettings(BaseSettings):
    """Per principal and route class: a sustained rate (per second) and a burst (`RATE_LIMIT_*`)."""

    model_config = SettingsConfigDict(env_prefix="RATE_LIMIT_", extra="ignore")

    enabled: bool = True
    inference_rate: float = Field(default=20.0, gt=0)
    inference_burst: int = Field(default=40, ge=1)
    read_rate: float = Field(default=20.0, gt=0)
    read_burst: int = Field(default=40, ge=1)
    write_rate: float = Field(default=5.0, gt=0)
    write_burst: int = Field(default=20, ge=1)
    token_rate: float = Field(default=0.2, gt=0, description="Token requests per client address.")
    token_burst: int = Field(default=5, ge=1)

    def rule(self, route_class: str) -> tuple[float, int]:
        return (getattr(self, f"{route_class}_rate"), getattr(self, f"{route_class}_burst"))


@lru_cache(maxsize=1)
def redis_settings() -> RedisSettings:
    return RedisSettings()


@lru_cache(maxsize=1)
def rate_limit_settings() -> RateLimitSettings:
    return RateLimitSettings()


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: float
    retry_after_s: float


# GCRA (a token bucket kept as one timestamp): atomic in Redis, using Redis's own clock so every
# replica agrees. Hand-written because it must also return the RateLimit-* header values.
GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if allow_at > now then
  return {0, 0, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
return {1, math.floor((now - allow_at) / interval), new_tat - now, 0}
"""


class LocalBuckets:
    """The same GCRA in process memory, for one process."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._tat: OrderedDict[str, float] = OrderedDict()
        self._max_keys = max_keys

    def hit(self, key: str, rate: float, burst: int) -> Decision:
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


class RedisGuard:
    """One Redis client with a circuit breaker: after a failure, skip Redis for a pause."""

    def __init__(self, settings: RedisSettings) -> None:
        import redis.asyncio as redis

        self.settings = settings
        self.client = (
            redis.Redis.from_url(
                settings.url,
                socket_timeout=settings.timeout_s,
                socket_connect_timeout=settings.timeout_s,
            )
            if settings.url
            else None
        )
        self._down_until = 0.0
        self.degraded = False

    @property
    def usable(self) -> bool:
        return self.client is not None and time.monotonic() >= self._down_until

    def failed(self, use: str, exc: Exception) -> None:
        REDIS_FAILURES.labels(use=use).inc()
        if not self.degraded:
            logger.warning(
                "Redis unavailable for %s (%r): policy %s", use, exc, self.settings.on_failure
            )
        self.degraded = True
        self._down_until = time.monotonic() + self.settings.retry_after_failure_s

    def recovered(self) -> None:
        if self.degraded:
            logger.warning("Redis is back; limits and cache are shared again")
        self.degraded = False

    async def ping(self) -> tuple[bool, str]:
        if self.client is None:
            return True, "not configured (in-process limits and cache)"
        try:
            await self.client.ping()
        except Exception as exc:
            self.failed("ping", exc)
            if self.settings.on_failure == "reject":
                return False, "unreachable"
            return True, "degraded: unreachable, enforcing in-process limits"
        self.recovered()
        return True, "ok"

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()


class RedisUnavailable(Exception):
    """Redis failed and the policy says to refuse."""


class RateLimiter:
    """Shared limits in Redis; per-process limits when Redis is absent or down (by policy)."""

    def __init__(self, guard: RedisGuard, settings: RateLimitSettings) -> None:
        self.guard = guard
        self.settings = settings
        self.local = LocalBuckets()
        self._script = guard.client.register_script(GCRA) if guard.client is not None else None

    async def hit(self, route_class: str, identity: str) -> Decision:
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


class ResultCache:
    """Inference results by model tag and input hash: Redis with a TTL, or a bounded local LRU."""

    def __init__(self, guard: RedisGuard, settings: RedisSettings) -> None:
        self.guard = guard
        self.settings = settings
        self._local: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        if self.guard.client is not None:
            if not self.guard.usable:
                CACHE.labels(outcome="unavailable").inc()
                return None
            try:
                value: bytes | None = await self.guard.client.get(key)
            except Exception as exc:
                self.guard.failed("cache", exc)
                CACHE.labels(outcome="unavailable").inc()
                return None
        else:
            value = self._local_get(key)
        CACHE.labels(outcome="hit" if value is not None else "miss").inc()
        return value

    async def set(self, key: str, value: bytes) -> None:
        if self.guard.client is None:
            self._local_set(key, value)
            return
        if not self.guard.usable:
            return
        try:
            await self.guard.client.set(key, value, ex=self.settings.cache_ttl_s)
        except Exception as exc:
            self.guard.failed("cache", exc)

    def _local_get(self, key: str) -> bytes | None:
        entry = self._local.get(key)
        if entry is None or entry[0] < time.monotonic():
            self._local.pop(key, None)
            return None
        self._local.move_to_end(key)
        return entry[1]

    def _local_set(self, key: str, value: bytes) -> None:
        if self.settings.local_cache_entries == 0:
            return
        self._local[key] = (time.monotonic() + self.settings.cache_ttl_s, value)
        self._local.move_to_end(key)
        while len(self._local) > self.settings.local_cache_entries:
            self._local.popitem(last=False)
