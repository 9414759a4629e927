"""The Bento's entry service: the /api/v1 gateway in front of one runner per framework.

client -> GatewayMiddleware (request id, probes, body limit, error envelope, access log)
       -> FastAPI /api/v1 -> schema validation -> coalescer -> runner (adaptive batching)
"""

import logging
from typing import Any

import bentoml

from db.settings import database_settings
from services.errors import AppError
from services.gateway.app import create_app
from services.gateway.middleware import GatewayMiddleware
from services.gateway.runtime import GatewayRuntime, RunnerProxy
from services.gateway.wiring import build_runtime
from services.observability import configure_logging
from services.runners.services import SklearnRunner, TorchRunner, XGBoostRunner
from services.settings import serving_settings

configure_logging()
logger = logging.getLogger("services.gateway")
SETTINGS = serving_settings()
api = create_app()


async def readiness() -> tuple[bool, dict[str, Any]]:
    """What `/ready` reports: not ready until the runtime exists and every check passes."""
    runtime: GatewayRuntime | None = getattr(api.state, "runtime", None)
    if runtime is None:
        return False, {"gateway": "starting"}
    return await runtime.readiness()


@bentoml.service(name="gateway", workers=1, traffic={"timeout": 60})
@bentoml.asgi_app(api, path="/api/v1")
class Gateway:
    """Routes, validates and batches; the runners only ever see validated, encoded rows."""

    sklearn_runner = bentoml.depends(SklearnRunner)
    xgboost_runner = bentoml.depends(XGBoostRunner)
    torch_runner = bentoml.depends(TorchRunner)

    def __init__(self) -> None:
        self.runtime: GatewayRuntime | None = None

    @bentoml.on_startup  # type: ignore[untyped-decorator]
    async def start(self) -> None:
        """Connect the prediction log and refuse to start on a schema behind the code."""
        runners = {
            "sklearn": RunnerProxy(self.sklearn_runner),
            "xgboost": RunnerProxy(self.xgboost_runner),
            "torch": RunnerProxy(self.torch_runner),
        }
        try:
            self.runtime = await build_runtime(
                runners=runners, serving=SETTINGS, database=database_settings()
            )
        except AppError as exc:
            logger.critical("refusing to start: %s", exc.message)
            raise
        api.state.runtime = self.runtime

    @bentoml.on_shutdown  # type: ignore[untyped-decorator]
    async def stop(self) -> None:
        if self.runtime is not None and self.runtime.store is not None:
            await self.runtime.store.close()

    async def __is_ready__(self) -> bool:
        if self.runtime is None:
            return False
        ready, _ = await self.runtime.readiness()
        return ready


Gateway.add_asgi_middleware(  # type: ignore[attr-defined]
    GatewayMiddleware, max_body_bytes=SETTINGS.max_body_bytes, readiness=readiness
)
