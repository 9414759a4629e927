"""The real gateway app in-process, with real models and a real database, minus BentoML's HTTP.

Runner calls go to a RunnerCore in this process (the same class the runner services use);
everything else (middleware chain, routes, validation, coalescing, group commit, auth, limits)
is production code.
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import bentoml
import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from db.settings import DatabaseSettings
from services.auth.settings import AuthSettings
from services.batch.settings import JobSettings
from services.catalog import ModelCatalog, ModelRef
from services.deployments.settings import DeploymentSettings, MonitoringSettings
from services.gateway.app import create_app
from services.gateway.oip.app import create_oip_app
from services.gateway.routers.jobs import JOBS_PATH
from services.gateway.runtime import GatewayRuntime
from services.gateway.stack import middleware_chain
from services.gateway.wiring import build_runtime
from services.ratelimit.settings import RateLimitSettings
from services.redis_client import RedisSettings
from services.runners.clients import LocalRunner
from services.runners.core import RunnerCore
from services.settings import ServingSettings


def model_refs(tags: Sequence[str]) -> tuple[ModelRef, ...]:
    refs = []
    for tag in tags:
        stored = bentoml.models.get(tag)
        refs.append(
            ModelRef(stored.tag.name, str(stored.tag.version), stored.info.labels["framework"])
        )
    return tuple(refs)


async def build_gateway(
    tags: Sequence[str],
    *,
    db_url: str | None,
    auth: AuthSettings | None = None,
    redis: RedisSettings | None = None,
    limits: RateLimitSettings | None = None,
    deployment: DeploymentSettings | None = None,
    monitoring: MonitoringSettings | None = None,
    jobs: JobSettings | None = None,
    **serving: Any,
) -> tuple[Any, GatewayRuntime]:
    """The gateway's ASGI app (middleware chain around the /api/v1 app) and its runtime; the
    caller closes the runtime. Options as for `gateway_client`; the drift gauge refresh is off,
    and so is the batch job worker unless `jobs` asks for it (tests drive JobWorker themselves)."""
    refs = model_refs(tags)
    runners = {}
    for framework in {ref.framework for ref in refs}:
        stored = [bentoml.models.get(ref.tag) for ref in refs if ref.framework == framework]
        runners[framework] = LocalRunner(RunnerCore(framework, stored))
    database_options = {
        key.removeprefix("db_"): serving.pop(key) for key in list(serving) if key.startswith("db_")
    }
    database = (
        DatabaseSettings(url=db_url, **database_options)
        if db_url
        else DatabaseSettings(persist_predictions=False)
    )
    runtime = await build_runtime(
        runners=runners,
        serving=ServingSettings(**serving),
        database=database,
        catalog=ModelCatalog.from_store(refs),
        auth=auth or AuthSettings(enabled=False),
        redis=redis or RedisSettings(cache_enabled=False),
        limits=limits or RateLimitSettings(enabled=False),
        deployment=deployment,
        monitoring=monitoring or MonitoringSettings(drift_refresh_s=0),
        jobs=jobs or JobSettings(run=False),
    )
    app = create_app()
    # As the Gateway service mounts them: /api/v1, and the protocol's app (its routes carry /v2).
    mounted = Starlette(routes=[Mount("/api/v1", app=app), Mount("", app=create_oip_app())])
    chain = middleware_chain(
        lambda: runtime,
        max_body_bytes=runtime.settings.max_body_bytes,
        protect_metrics=False,
        upload_limits={JOBS_PATH: (jobs or JobSettings()).max_upload_bytes},
    )
    app_with_chain: Any = mounted
    for middleware, options in reversed(chain):  # the first entry ends up outermost, as BentoML
        app_with_chain = middleware(app_with_chain, **options)
    return app_with_chain, runtime


@asynccontextmanager
async def gateway_client(
    tags: Sequence[str],
    *,
    db_url: str | None,
    auth: AuthSettings | None = None,
    redis: RedisSettings | None = None,
    limits: RateLimitSettings | None = None,
    deployment: DeploymentSettings | None = None,
    monitoring: MonitoringSettings | None = None,
    jobs: JobSettings | None = None,
    **serving: Any,
) -> AsyncIterator[tuple[httpx.AsyncClient, GatewayRuntime]]:
    """An httpx client on the gateway serving `tags`; db_url None switches persistence off.

    Auth, rate limits and the cache are off unless their settings are passed; so is the drift
    gauge refresh. Other keyword arguments are ServingSettings fields, or DatabaseSettings
    fields prefixed `db_`.
    """
    app, runtime = await build_gateway(
        tags,
        db_url=db_url,
        auth=auth,
        redis=redis,
        limits=limits,
        deployment=deployment,
        monitoring=monitoring,
        jobs=jobs,
        **serving,
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client, runtime
    finally:
        await runtime.close()


class LifespanGateway:
    """The gateway as one ASGI app whose lifespan builds (and closes) its runtime, for clients
    that run the app on an event loop of their own (Schemathesis). Options as for
    `gateway_client`."""

    def __init__(self, tags: Sequence[str], **options: Any) -> None:
        self.tags = tags
        self.options = options
        self.app: Any = None
        self.runtime: GatewayRuntime | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.app, self.runtime = await build_gateway(self.tags, **self.options)
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.runtime is not None:
                    await self.runtime.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
