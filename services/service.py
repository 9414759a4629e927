"""The Bento's entry service: three front doors (/api/v1 REST, the Open Inference Protocol at
/v2, and `predict` for BentoML's clients) over one prediction service. scikit-learn and XGBoost
models predict in each gateway worker (SERVING_INPROCESS); the other frameworks, and those too
when the setting leaves them out, in one runner service per framework.

client -> GatewayMiddleware (request id, runtime, probes, body limit, error envelope, access log)
       -> AuthMiddleware (JWT or API key) -> RateLimitMiddleware (Redis, per principal)
       -> FastAPI /api/v1 -> PredictionService: scope check -> schema validation -> result cache
       -> coalescer -> runner (adaptive batching) -> group-committed prediction log -> 201
"""

import asyncio
import logging
from typing import Annotated, Any

import bentoml
from pydantic import Field

from db.settings import database_settings
from services.auth.middleware import PREDICT_PATH
from services.auth.settings import auth_settings
from services.batch.settings import job_settings
from services.errors import AppError
from services.gateway.app import create_app
from services.gateway.client_api import predict_for_client
from services.gateway.drain import drain_on_sigterm
from services.gateway.oip.app import create_oip_app
from services.gateway.protocol import install_http_protocol
from services.gateway.routers.jobs import JOBS_PATH
from services.gateway.runtime import GatewayRuntime
from services.gateway.stack import middleware_chain
from services.gateway.traffic_labels import bound_bentoml_traffic_labels
from services.gateway.wiring import build_runtime
from services.observability.logs import configure_logging
from services.ratelimit.settings import rate_limit_settings
from services.redis_client import redis_settings
from services.runners.clients import LocalRunner, RemoteRunner, RunnerClient
from services.runners.core import RunnerCore
from services.runners.services import (
    RUNNER_SERVICES,
    SklearnRunner,
    TorchRunner,
    XGBoostRunner,
    declare_models,
    stored_models,
)
from services.runners.verify import verify_or_exit
from services.settings import GATEWAY_SERVICE, server_settings, serving_settings

configure_logging()
logger = logging.getLogger("services.gateway")
SETTINGS = serving_settings()
SERVER = server_settings()
api = create_app()
oip = create_oip_app()  # its routes carry /v2 themselves, so that GET /v2 is one of them
# Before BentoML builds any app or uvicorn Config in this process (every worker imports this).
bound_bentoml_traffic_labels()
install_http_protocol()


# BentoML wraps every request in an OpenTelemetry span, which costs CPU even at sample rate 0
# with no exporter; the prediction routes, which carry nearly all the traffic, skip it (searched
# in each request's URL). Their request id, latency and errors are in the access log and metrics.
UNTRACED_URLS = [
    r"/api/v1/predictions(\?|$)",
    r"/v2/models/[^/?]+(/versions/[^/?]+)?/infer(\?|$)",
    rf"{PREDICT_PATH}(\?|$)",
]


class _RuntimeSlot:
    """This worker process's runtime, once its startup hook has built it (None before)."""

    runtime: GatewayRuntime | None = None

    def __call__(self) -> GatewayRuntime | None:
        return self.runtime


RUNTIME = _RuntimeSlot()


@bentoml.service(
    name=GATEWAY_SERVICE,
    workers=SETTINGS.gateway_worker_count,
    # Above the middleware's own limits, so a slow request gets our enveloped 408/504 first.
    traffic={"timeout": SERVER.bentoml_timeout_s},
    # Our middleware writes one JSON access line per request; BentoML's would be a second.
    logging={"access": {"enabled": False}},
    tracing={"excluded_urls": UNTRACED_URLS},
)
# Decorators apply bottom-up: /api/v1 is mounted (and so matched) first, the protocol's app after.
@bentoml.asgi_app(oip, path="/")
@bentoml.asgi_app(api, path="/api/v1")
@declare_models(*SETTINGS.inprocess)
class Gateway:
    """Routes, validates and batches; models only ever see validated, encoded rows."""

    # A runner service only for the frameworks not predicted in this process: BentoML starts
    # exactly the services the entry service depends on.
    if "sklearn" not in SETTINGS.inprocess:
        sklearn_runner = bentoml.depends(SklearnRunner)
    if "xgboost" not in SETTINGS.inprocess:
        xgboost_runner = bentoml.depends(XGBoostRunner)
    torch_runner = bentoml.depends(TorchRunner)

    @bentoml.api(route=PREDICT_PATH)  # type: ignore[untyped-decorator]
    async def predict(
        self,
        model: Annotated[str, Field(description="`name` or `name:version`")],
        inputs: Annotated[
            list[Any], Field(description="Rows, each an object of feature name -> value.")
        ],
        ctx: bentoml.Context,
    ) -> dict[str, Any]:
        """Predict rows with one model, as POST /api/v1/predictions does (same credentials,
        scope, validation, cache and prediction log); errors carry their HTTP status."""
        status, document = await predict_for_client(ctx.request, model, inputs)
        ctx.response.status_code = status
        return document

    @bentoml.on_deployment  # type: ignore[untyped-decorator]
    def verify_models() -> None:
        """Once, in the server's main process, before any worker starts: refuse to start (exit
        non-zero, one log line with model, tag and reason) if a served model fails its checks."""
        verify_or_exit()

    @bentoml.on_startup  # type: ignore[untyped-decorator]
    async def start(self) -> None:
        """Build the runtime; refuse to start on a schema behind the code or a weak secret."""
        runners: dict[str, RunnerClient] = {}
        for framework in RUNNER_SERVICES:
            if framework in SETTINGS.inprocess:  # loaded and golden-checked in this worker
                core = await asyncio.to_thread(
                    RunnerCore,
                    framework,
                    stored_models(self, framework),
                    golden_tolerance=SETTINGS.golden_tolerance,
                )
                runners[framework] = LocalRunner(core)
            else:
                runners[framework] = RemoteRunner(getattr(self, f"{framework}_runner"))
        try:
            runtime = await build_runtime(
                runners=runners,
                serving=SETTINGS,
                database=database_settings(),
                auth=auth_settings(),
                redis=redis_settings(),
                limits=rate_limit_settings(),
                jobs=job_settings(),
            )
        except AppError as exc:
            logger.critical("refusing to start: %s", exc.message)
            raise
        RUNTIME.runtime = runtime
        drain_on_sigterm(runtime.drain, SERVER.drain_grace_s)

    @bentoml.on_shutdown  # type: ignore[untyped-decorator]
    async def stop(self) -> None:
        if RUNTIME.runtime is not None:
            await RUNTIME.runtime.close()

    async def __is_ready__(self) -> bool:
        if RUNTIME.runtime is None:
            return False
        ready, _ = await RUNTIME.runtime.readiness()
        return ready


for middleware, options in middleware_chain(
    RUNTIME,
    max_body_bytes=SETTINGS.max_body_bytes,
    protect_metrics=auth_settings().protect_metrics,
    limits=SERVER,
    upload_limits={JOBS_PATH: job_settings().max_upload_bytes},
):
    Gateway.add_asgi_middleware(middleware, **options)  # type: ignore[attr-defined]
