"""Assemble the gateway runtime from settings, once: catalog, runners, prediction log, auth,
limits and cache."""

import importlib.util
import logging
from collections.abc import Mapping
from datetime import timedelta

from db.settings import DatabaseSettings
from services.auth.authenticator import Authenticator
from services.auth.credentials import TokenSigner
from services.auth.epochs import CredentialEpochs
from services.auth.settings import AuthSettings
from services.batch.jobs import JobService
from services.batch.settings import JobSettings
from services.batch.worker import JobWorker
from services.cache import ResultCache
from services.catalog import ModelCatalog
from services.deployments.settings import (
    DeploymentSettings,
    MonitoringSettings,
    deployment_settings,
    monitoring_settings,
)
from services.errors import ServiceUnavailable
from services.gateway.lifecycle import Lifecycle, start_lifecycle
from services.gateway.runtime import GatewayRuntime, ReadinessProbe
from services.persistence import PredictionStore
from services.pipeline.inference import Inference
from services.pipeline.prediction_service import PredictionService
from services.ratelimit.limiter import RateLimiter
from services.ratelimit.settings import RateLimitSettings
from services.redis_client import RedisGuard, RedisSettings
from services.runners.clients import RunnerClient
from services.settings import ServingSettings

logger = logging.getLogger("services.gateway")


async def build_runtime(
    *,
    runners: Mapping[str, RunnerClient],
    serving: ServingSettings,
    database: DatabaseSettings,
    catalog: ModelCatalog | None = None,
    auth: AuthSettings | None = None,
    redis: RedisSettings | None = None,
    limits: RateLimitSettings | None = None,
    deployment: DeploymentSettings | None = None,
    monitoring: MonitoringSettings | None = None,
    jobs: JobSettings | None = None,
) -> GatewayRuntime:
    """A ready-to-serve runtime, or an AppError saying why the service must not start."""
    auth = auth or AuthSettings()
    redis = redis or RedisSettings()
    limits = limits or RateLimitSettings()
    production = serving.environment == "production"
    store = await _prediction_log(database, production=production)
    try:
        signer = _signer(auth, production=production)
        guard = RedisGuard(redis)
        if guard.client is None:
            logger.warning("REDIS_URL is not set: rate limits and the result cache are per process")
        limiter = _limiter(guard, limits, production=production)
    except Exception:
        if store is not None:
            await store.close()
        raise
    catalog = catalog or ModelCatalog.from_store()
    inference = Inference(runners, serving)
    cache = ResultCache(guard, redis) if redis.cache_enabled else None
    lifecycle = await _lifecycle(catalog, inference, store, deployment, monitoring)
    probes: dict[str, ReadinessProbe] = {"redis": guard.ping}
    if store is not None:
        probes["database"] = store.ping
    predictions = PredictionService(
        catalog=catalog,
        inference=inference,
        settings=serving,
        store=store,
        cache=cache,
        auth_enabled=signer is not None,
        router=lifecycle.deployments if lifecycle else None,
        shadows=lifecycle.shadows if lifecycle else None,
    )
    job_service, worker = _jobs(jobs or JobSettings(), store, predictions)
    return GatewayRuntime(
        settings=serving,
        catalog=catalog,
        inference=inference,
        predictions=predictions,
        redis=guard,
        store=store,
        authenticator=_authenticator(signer, store, guard, auth),
        signer=signer,
        limiter=limiter,
        cache=cache,
        probes=probes,
        lifecycle=lifecycle,
        jobs=job_service,
        job_worker=worker,
    )


def _jobs(
    settings: JobSettings, store: PredictionStore | None, predictions: PredictionService
) -> tuple[JobService | None, JobWorker | None]:
    """Batch jobs live in the database: without the prediction log there are none."""
    if store is None or not settings.enabled:
        return None, None
    if settings.dask_scheduler and importlib.util.find_spec("distributed") is None:
        raise ServiceUnavailable(
            "JOBS_DASK_SCHEDULER is set but Dask is not installed: install the `batch` extra"
        )
    service = JobService(store=store, predictions=predictions, settings=settings)
    if not settings.run:
        return service, None
    worker = JobWorker(service)
    worker.start()
    return service, worker


async def _lifecycle(
    catalog: ModelCatalog,
    inference: Inference,
    store: PredictionStore | None,
    deployment: DeploymentSettings | None,
    monitoring: MonitoringSettings | None,
) -> Lifecycle | None:
    """Deployments live in the database: without the prediction log (benchmarks only) every
    model serves its newest version, with no canary, shadow or drift gauge."""
    if store is None:
        return None
    try:
        return await start_lifecycle(
            catalog=catalog,
            inference=inference,
            store=store,
            deployment=deployment or deployment_settings(),
            monitoring=monitoring or monitoring_settings(),
        )
    except Exception:
        await store.close()
        raise


async def _prediction_log(
    database: DatabaseSettings, *, production: bool
) -> PredictionStore | None:
    if not database.persist_predictions:
        if production:
            raise ServiceUnavailable("DB_PERSIST_PREDICTIONS=false is not allowed in production")
        logger.warning("the prediction log is OFF (DB_PERSIST_PREDICTIONS=false): benchmarks only")
        return None
    store = PredictionStore.connect(database)
    try:
        await store.check_schema()
    except Exception:
        await store.close()
        raise
    return store


def _authenticator(
    signer: TokenSigner | None, store: PredictionStore | None, guard: RedisGuard, auth: AuthSettings
) -> Authenticator | None:
    if signer is None:
        return None
    if store is None:
        return Authenticator(signer, None)
    epochs = CredentialEpochs(store.sessions, guard, ttl_s=auth.epoch_cache_ttl_s)
    return Authenticator(signer, store.sessions, epochs)


def _signer(auth: AuthSettings, *, production: bool) -> TokenSigner | None:
    if not auth.enabled:
        if production:
            raise ServiceUnavailable("AUTH_ENABLED=false is not allowed in production")
        logger.warning("authentication is OFF (AUTH_ENABLED=false): benchmarks only")
        return None
    try:
        return signer_from(auth, production=production)
    except ValueError as exc:
        raise ServiceUnavailable(f"refusing to start: {exc}") from None


def signer_from(auth: AuthSettings, *, production: bool) -> TokenSigner:
    """HS256 with our secret (we issue tokens), or RS256 with a provider's public key."""
    ttl = timedelta(seconds=auth.token_ttl_s)
    if auth.jwt_algorithm == "RS256":
        if not auth.jwt_public_key:
            raise ValueError("AUTH_JWT_ALGORITHM=RS256 needs AUTH_JWT_PUBLIC_KEY")
        return TokenSigner(
            "RS256", None, auth.jwt_public_key, auth.jwt_issuer, auth.jwt_audience, ttl
        )
    secret = auth.signing_secret(production=production)
    return TokenSigner("HS256", secret, secret, auth.jwt_issuer, auth.jwt_audience, ttl)


def _limiter(
    guard: RedisGuard, limits: RateLimitSettings, *, production: bool
) -> RateLimiter | None:
    if limits.enabled:
        return RateLimiter(guard, limits)
    if production:
        raise ServiceUnavailable("RATE_LIMIT_ENABLED=false is not allowed in production")
    logger.warning("rate limiting is OFF (RATE_LIMIT_ENABLED=false): benchmarks only")
    return None
