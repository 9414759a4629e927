"""Assemble the gateway runtime from settings: registry, runner clients, prediction log."""

import logging
from collections.abc import Mapping

from db.settings import DatabaseSettings
from services.errors import ServiceUnavailable
from services.gateway.registry import ModelRegistry
from services.gateway.runtime import GatewayRuntime, RunnerClient
from services.persistence import PredictionStore
from services.settings import ServingSettings

logger = logging.getLogger("services.gateway")


async def build_runtime(
    *,
    runners: Mapping[str, RunnerClient],
    serving: ServingSettings,
    database: DatabaseSettings,
    registry: ModelRegistry | None = None,
) -> GatewayRuntime:
    """A ready-to-serve runtime, or an AppError saying why the service must not start."""
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
    )
    if store is not None:
        runtime.probes["database"] = store.ping
    return runtime
