"""Auth settings (`AUTH_*`). Secrets come only from the environment."""

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_SECRET_LENGTH = 32
REPO_ROOT = Path(__file__).resolve().parents[2]


class AuthSettings(BaseSettings):
    """How callers prove who they are."""

    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    enabled: bool = Field(
        default=True, description="Off only for benchmarks; refused in production."
    )
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_secret: SecretStr | None = Field(
        default=None, description=f"HS256 signing secret, at least {MIN_SECRET_LENGTH} characters."
    )
    jwt_public_key: str | None = Field(
        default=None, description="PEM public key for RS256 tokens from an external provider."
    )
    jwt_issuer: str = "model-packaging"
    jwt_audience: str = "model-packaging-api"
    token_ttl_s: int = Field(default=3600, ge=60, le=86_400)
    dev_secret_file: Path = Field(
        default=REPO_ROOT / ".data" / "dev-jwt-secret",
        description="Development only: a generated secret shared by this machine's workers.",
    )
    protect_metrics: bool = Field(default=False, description="Require admin scope on /metrics.")
    epoch_cache_ttl_s: int = Field(
        default=60,
        ge=1,
        le=3600,
        description="Lifetime of the Redis copy of each user's credential epoch. It bounds "
        "staleness only if Redis fails in the middle of an account change.",
    )

    def signing_secret(self, *, production: bool) -> str:
        """The HS256 secret; production refuses a missing or weak one."""
        if self.jwt_secret is not None:
            value = self.jwt_secret.get_secret_value()
            if len(value) < MIN_SECRET_LENGTH:
                raise ValueError(f"AUTH_JWT_SECRET must be at least {MIN_SECRET_LENGTH} characters")
            return value
        if production:
            raise ValueError("AUTH_JWT_SECRET is required outside development mode")
        return _development_secret(self.dev_secret_file)


def _development_secret(path: Path) -> str:
    """A random secret kept in a private file, so every local worker verifies the same tokens."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


@lru_cache(maxsize=1)
def auth_settings() -> AuthSettings:
    return AuthSettings()
