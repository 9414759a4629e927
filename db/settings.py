"""Database settings (`DB_*`): the URL, pooling, timeouts and group commit."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_URL = f"sqlite+aiosqlite:///{REPO_ROOT / '.data' / 'gateway.sqlite3'}"


class DatabaseSettings(BaseSettings):
    """PostgreSQL (asyncpg) in production; an embedded SQLite file by default."""

    model_config = SettingsConfigDict(env_prefix="DB_", extra="ignore")

    url: str = Field(
        default=EMBEDDED_URL,
        description="postgresql+asyncpg://user:pass@host/db or sqlite+aiosqlite:///path",
    )
    pool_size: int = Field(default=10, ge=1, le=200)
    max_overflow: int = Field(default=10, ge=0, le=200)
    pool_timeout_s: float = Field(default=5.0, gt=0, description="Wait for a pooled connection.")
    connect_timeout_s: float = Field(default=5.0, gt=0)
    statement_timeout_s: float = Field(default=10.0, gt=0)
    write_timeout_s: float = Field(
        default=10.0, gt=0, description="A prediction's commit must finish within this."
    )
    retry_after_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Circuit breaker: after the database failed, answer 503 with Retry-After for "
        "this long before one request (or /ready) tries it again.",
    )
    group_commit_in_flight: int = Field(
        default=2, ge=1, le=32, description="Concurrent commits before new rows wait and group."
    )
    group_commit_max_rows: int = Field(default=2_000, ge=1)
    persist_predictions: bool = Field(
        default=True,
        description="Write every prediction before answering 201. Off only for benchmarks; "
        "production refuses to start with it off.",
    )

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


@lru_cache(maxsize=1)
def database_settings() -> DatabaseSettings:
    return DatabaseSettings()
