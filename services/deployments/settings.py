"""Settings of deployment propagation and shadow traffic (`DEPLOYMENT_*`), and of the
monitoring reports and the drift gauge (`MONITORING_*`)."""

from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.monitoring.windows import parse_duration


class DeploymentSettings(BaseSettings):
    """How deployment changes reach the workers, and how much shadow work a worker takes."""

    model_config = SettingsConfigDict(env_prefix="DEPLOYMENT_", extra="ignore")

    poll_s: float = Field(
        default=1.0,
        ge=0.05,
        le=2.0,
        description="How often each gateway worker reads the deployment change counter from the "
        "database; a change applies everywhere within this plus one query.",
    )
    shadow_queue: int = Field(
        default=1_000,
        ge=0,
        le=100_000,
        description="Shadow jobs waiting per worker; more are dropped (counted in "
        "shadow_jobs_total{outcome=dropped}), never the primary request.",
    )
    shadow_in_flight: int = Field(
        default=8,
        ge=1,
        le=64,
        description="Shadow jobs running at once per worker (they wait on the runner and the "
        "database, and both batch concurrent work).",
    )


class MonitoringSettings(BaseSettings):
    """Bounds of the drift, quality and shadow reports, and the drift gauge refresh."""

    model_config = SettingsConfigDict(env_prefix="MONITORING_", extra="ignore")

    max_rows: int = Field(
        default=200_000,
        ge=1,
        description="Rows a drift, quality or shadow report reads at most, newest first.",
    )
    drift_refresh_s: float = Field(
        default=60.0,
        ge=0,
        description="How often the lease-holding worker recomputes model_feature_psi (0: never).",
    )
    drift_window: str = Field(default="1h", description="The window the gauge covers.")
    drift_max_rows: int = Field(
        default=50_000, ge=1, description="Rows per model the gauge refresh reads at most."
    )

    @field_validator("drift_window")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


@lru_cache(maxsize=1)
def deployment_settings() -> DeploymentSettings:
    """The process-wide deployment settings, read once."""
    return DeploymentSettings()


@lru_cache(maxsize=1)
def monitoring_settings() -> MonitoringSettings:
    """The process-wide monitoring settings, read once."""
    return MonitoringSettings()
