"""Redis for rate limits and the result cache, shared by every worker and replica (`REDIS_*`),
behind a circuit breaker; without a URL both stay in-process."""

import logging
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.circuit import CircuitBreaker
from services.observability.metrics import REDIS_FAILURES

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

        self.settings = settings
        self.client: Redis | None = (
            redis.Redis.from_url(
                settings.url,
                socket_timeout=settings.timeout_s,
                socket_connect_timeout=settings.timeout_s,
            )
            if settings.url
            else None
        )
        self.breaker = CircuitBreaker(pause_s=settings.retry_after_failure_s)

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
        """Readiness: reachable, degraded (policy local) or unreachable (policy reject)."""
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
        """Release the connection pool."""
        if self.client is not None:
            await self.client.aclose()
