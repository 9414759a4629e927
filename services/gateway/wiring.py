"""Assemble the gateway runtime from settings: registry, runner clients, prediction log."""

import logging
from collections.abc import Mapping
from datetime import timedelta

from db.settings import DatabaseSettings
from services.auth.authenticator import Authenticator
from services.auth.credentials import TokenSigner
from services.auth.settings import AuthSettings
from services.errors import ServiceUnavailable
from services.gateway.registry import ModelRegistry
from services.gateway.runtime import GatewayRuntime, RunnerClient
from services.limits import RateLimiter, RateLimitSettings, RedisGuard, RedisSettings, ResultCache
from services.persistence import PredictionStore
from services.settings import ServingSettings

logger = logging.getLogger("services.gateway")


async def build_runtime(
    *,
    runners: Mapping[str, RunnerClient],
    serving: ServingSettings,
    database: DatabaseSettings,
    registry: ModelRegistry | None = None,
    auth: AuthSettings | None = None,
    redis: RedisSettings | None = None,
    limits: RateLimitSettings | None = None,
) -> GatewayRuntime:
    """A ready-to-serve runtime, or an AppError saying why the service must not start."""
    auth = auth or AuthSettings()
    redis = redis or RedisSettings()
    limits = limits or RateLimitSettings()
    production = serving.environment == "production"
    store = None
    if database.persist_predictions:
        store = PredictionStore.connect(database)
        try:
            await store.check_schema()
        except Exception:
            await store.close()
            raise
    elif serving.environment == "production":
        raise ServiceUnavailable("DB_PERSIST_PREDICTIONS=false is not allowed in production")
    else:
        logger.warning("the prediction log is OFF (DB_PERSIST_PREDICTIONS=false): benchmarks only")
    runtime = GatewayRuntime(
        registry=registry or ModelRegistry.from_store(),
        runners=runners,
        settings=serving,
        store=store,
        auth_enabled=auth.enabled,
    )
    if store is not None:
        runtime.probes["database"] = store.ping
    _install_auth(runtime, auth, production=production)
    _install_limits(runtime, redis, limits, production=production)
    return runtime


def _install_auth(runtime: GatewayRuntime, auth: AuthSettings, *, production: bool) -> None:
    if not auth.enabled:
        if production:
            raise ServiceUnavailable("AUTH_ENABLED=false is not allowed in production")
        logger.warning("authentication is OFF (AUTH_ENABLED=false): benchmarks only")
        return
    try:
        runtime.signer = signer_from(auth, production=production)
    except ValueError as exc:
        raise ServiceUnavailable(f"refusing to start: {exc}") from None
    runtime.authenticator = Authenticator(
        runtime.signer, runtime.store.sessions if runtime.store is not None else None
    )


def signer_from(auth: AuthSettings, *, production: bool) -> TokenSigner:
    """HS256 with our secret (we issue tokens), or RS256 with a provider's public key."""
    if auth.jwt_algorithm == "RS256":
        if not auth.jwt_public_key:
            raise ValueError("AUTH_JWT_ALGORITHM=RS256 needs AUTH_JWT_PUBLIC_KEY")
        return TokenSigner(
            "RS256",
            None,
            auth.jwt_public_key,
            auth.jwt_issuer,
            auth.jwt_audience,
            timedelta(seconds=auth.token_ttl_s),
        )
    secret = auth.signing_secret(production=production)
    return TokenSigner(
        "HS256",
        secret,
        secret,
        auth.jwt_issuer,
        auth.jwt_audience,
        timedelta(seconds=auth.token_ttl_s),
    )


def _install_limits(
    runtime: GatewayRuntime, redis: RedisSettings, limits: RateLimitSettings, *, production: bool
) -> None:
    guard = RedisGuard(redis)
    if guard.client is None:
        logger.warning("REDIS_URL is not set: rate limits and the result cache are per process")
    runtime.probes["redis"] = guard.ping
    runtime.redis = guard
    if limits.enabled:
        runtime.limiter = RateLimiter(guard, limits)
    elif production:
        raise ServiceUnavailable("RATE_LIMIT_ENABLED=false is not allowed in production")
    else:
        logger.warning("rate limiting is OFF (RATE_LIMIT_ENABLED=false): benchmarks only")
    if redis.cache_enabled:
        runtime.cache = ResultCache(guard, redis)
