"""FastAPI dependencies shared by the routers."""

from typing import Annotated

from fastapi import Depends, Request

from services.errors import ModelNotLoaded, ServiceUnavailable
from services.gateway.runtime import GatewayRuntime
from services.persistence import PredictionStore


def get_runtime(request: Request) -> GatewayRuntime:
    """The gateway runtime the service installed at startup."""
    runtime: GatewayRuntime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise ModelNotLoaded("the gateway is still starting")
    return runtime


RuntimeDep = Annotated[GatewayRuntime, Depends(get_runtime)]


def get_store(runtime: RuntimeDep) -> PredictionStore:
    """The prediction log; 503 where persistence is switched off (benchmarks only)."""
    if runtime.store is None:
        raise ServiceUnavailable("the prediction log is disabled on this deployment")
    return runtime.store


StoreDep = Annotated[PredictionStore, Depends(get_store)]
