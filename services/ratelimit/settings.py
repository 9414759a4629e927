"""Rate-limit rules (`RATE_LIMIT_*`): per route class, a sustained rate and a burst."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    lease_max: int = Field(
        default=16,
        ge=1,
        le=1000,
        description="Most tokens a worker takes from the shared (Redis) bucket per round trip: "
        "a tenth of the burst, capped by this (services.ratelimit.limiter says what it costs).",
    )
    lease_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How long a worker may spend leased tokens; unspent ones are lost after.",
    )

    def rule(self, route_class: str) -> tuple[float, int]:
        """(rate per second, burst) of a route class."""
        return (getattr(self, f"{route_class}_rate"), getattr(self, f"{route_class}_burst"))


@lru_cache(maxsize=1)
def rate_limit_settings() -> RateLimitSettings:
    """The process-wide rate-limit settings, read once."""
    return RateLimitSettings()
