"""Redis for rate limits and the result cache, shared by every worker and replica (`REDIS_*`),
behind a circuit breaker; without a URL both stay in-process."""

import logging
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.circuit import CircuitBreaker
from services.observability.metrics import REDIS_FAILURES, breaker_listener, report_up

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger("services.redis")


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


@lru_cache(maxsize=1)
def redis_settings() -> RedisSettings:
    """The process-wide Redis settings, read once."""
    return RedisSettings()


class RedisUnavailable(Exception):
    """Redis failed and the policy says to refuse."""


class RedisGuard:
    """One Redis client with a circuit breaker: after a failure, skip Redis for a pause."""

    def __init__(self, settings: RedisSettings) -> None:
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.settings = settings
        self.client: Redis | None = (
            redis.Redis.from_url(
                settings.url,
                socket_timeout=settings.timeout_s,
                socket_connect_timeout=settings.timeout_s,
                # One immediate retry replaces a pooled connection that a Redis restart closed;
                # redis-py's default (3 retries, backoff) stretched each call far past timeout_s.
                retry=Retry(NoBackoff(), 1),
            )
            if settings.url
            else None
        )
        self.breaker = CircuitBreaker(
            pause_s=settings.retry_after_failure_s, on_change=breaker_listener("redis")
        )

    @property
    def usable(self) -> bool:
        """A client is configured and the breaker is closed."""
        return self.client is not None and not self.breaker.open

    @property
    def degraded(self) -> bool:
        return self.breaker.degraded

    def failed(self, use: str, exc: Exception) -> None:
        """Count a failed call and open the breaker."""
        REDIS_FAILURES.labels(use=use).inc()
        if self.breaker.failed():
            logger.warning(
                "Redis unavailable for %s (%r): policy %s", use, exc, self.settings.on_failure
            )

    def recovered(self) -> None:
        """A call worked: close the breaker."""
        if self.breaker.succeeded():
            logger.warning("Redis is back; limits and cache are shared again")

    async def ping(self) -> tuple[bool, str]:
        """Readiness: reachable, degraded (policy local) or unreachable (policy reject).

        The ping moves the same breaker that admits requests: the moment /ready says Redis is
        back, requests are admitted again, and the moment it says down, they are refused."""
        if self.client is None:
            return True, "not configured (in-process limits and cache)"
        try:
            await self.client.ping()
        except Exception as exc:
            self.failed("ping", exc)
            report_up("redis", False)
            if self.settings.on_failure == "reject":
                return False, "unreachable"
            return True, "degraded: unreachable, enforcing in-process limits"
        self.recovered()
        report_up("redis", True)
        return True, "ok"

    async def close(self) -> None:
        """Release the connection pool."""
        if self.client is not None:
            await self.client.aclose()
