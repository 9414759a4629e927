"""The gateway's live state, built once at startup and never changed afterwards."""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from services.auth.authenticator import Authenticator
from services.auth.credentials import TokenSigner
from services.batch.jobs import JobService
from services.batch.worker import JobWorker
from services.cache import ResultCache
from services.catalog import ModelCatalog, ServedModel
from services.gateway.drain import Drain
from services.gateway.lifecycle import Lifecycle
from services.persistence import PredictionStore
from services.pipeline.inference import Inference
from services.pipeline.prediction_service import PredictionService
from services.ratelimit.limiter import RateLimiter
from services.redis_client import RedisGuard
from services.settings import ServingSettings

ReadinessProbe = Callable[[], Awaitable[tuple[bool, str]]]


@dataclass(frozen=True)
class GatewayRuntime:
    """Everything a request may need; `None` means that feature is off on this deployment."""

    settings: ServingSettings
    catalog: ModelCatalog
    inference: Inference
    predictions: PredictionService
    redis: RedisGuard
    store: PredictionStore | None = None
    authenticator: Authenticator | None = None
    signer: TokenSigner | None = None
    limiter: RateLimiter | None = None
    cache: ResultCache | None = None
    probes: Mapping[str, ReadinessProbe] = field(default_factory=dict)
    lifecycle: Lifecycle | None = None  # deployments, shadows, drift gauge (needs the log)
    drain: Drain = field(default_factory=Drain)
    jobs: JobService | None = None  # batch scoring (needs the prediction log)
    job_worker: JobWorker | None = None  # this worker scoring queued jobs (JOBS_RUN)

    def resolve(self, wanted: str) -> ServedModel:
        """`name:version`, or for a bare `name` the version that answers it now: the
        deployment's production (the newest served version where no deployment runs)."""
        if ":" not in wanted and self.lifecycle is not None:
            return self.lifecycle.deployments.snapshot.production(wanted)
        return self.catalog.resolve(wanted)

    async def readiness(self) -> tuple[bool, dict[str, str]]:
        """Not draining, every runner up with its models loaded and golden-checked, plus the
        probes (each probe also moves its dependency's breaker: readiness and admission agree)."""
        if self.drain.draining:
            return False, {"gateway": "draining"}
        names = list(self.probes)
        runners, probed = await asyncio.gather(
            self.inference.readiness(self.catalog.all()),
            asyncio.gather(*(self.probes[name]() for name in names)),
        )
        results = {**runners, **dict(zip(names, probed, strict=True))}
        ready = all(ok for ok, _ in results.values())
        return ready, {name: detail for name, (_, detail) in results.items()}

    async def close(self) -> None:
        """Stop background work; release pooled connections (database, Redis)."""
        if self.job_worker is not None:
            await self.job_worker.close()
        if self.lifecycle is not None:
            await self.lifecycle.close()
        if self.store is not None:
            await self.store.close()
        await self.redis.close()
