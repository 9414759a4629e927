"""The real gateway app in-process, with real models and a real database, minus BentoML's HTTP.

Runner calls go to a RunnerCore in this process (the same class the runner services use);
everything else (middleware, routes, validation, coalescing, group commit) is production code.
"""

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import bentoml
import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from db.settings import DatabaseSettings
from services.catalog import ModelRef
from services.gateway.app import create_app
from services.gateway.middleware import GatewayMiddleware
from services.gateway.registry import ModelRegistry
from services.gateway.runtime import GatewayRuntime
from services.gateway.wiring import build_runtime
from services.runners.core import RunnerCore
from services.runners.protocol import PredictItem, PredictOutput, RunnerStatus
from services.settings import ServingSettings


class LocalRunner:
    """A RunnerClient over an in-process RunnerCore (run in a thread, as BentoML would)."""

    def __init__(self, core: RunnerCore) -> None:
        self.core = core
        self.calls = 0

    async def predict(self, items: list[PredictItem]) -> list[PredictOutput]:
        self.calls += 1
        return await asyncio.to_thread(self.core.predict, items)

    async def status(self) -> RunnerStatus:
        return RunnerStatus(framework=self.core.framework, models=sorted(self.core.models))


def model_refs(tags: Sequence[str]) -> tuple[ModelRef, ...]:
    refs = []
    for tag in tags:
        stored = bentoml.models.get(tag)
        refs.append(
            ModelRef(stored.tag.name, str(stored.tag.version), stored.info.labels["framework"])
        )
    return tuple(refs)


@asynccontextmanager
async def gateway_client(
    tags: Sequence[str], *, db_url: str | None, **serving: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, GatewayRuntime]]:
    """An httpx client on the gateway serving `tags`; db_url None switches persistence off.

    Keyword arguments are ServingSettings fields, or DatabaseSettings fields prefixed `db_`.
    """
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
        registry=ModelRegistry.from_store(refs),
    )
    app = create_app()
    app.state.runtime = runtime
    mounted = Starlette(routes=[Mount("/api/v1", app=app)])
    asgi = GatewayMiddleware(
        mounted, max_body_bytes=runtime.settings.max_body_bytes, readiness=runtime.readiness
    )
    transport = httpx.ASGITransport(app=asgi)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client, runtime
    finally:
        if runtime.store is not None:
            await runtime.store.close()
