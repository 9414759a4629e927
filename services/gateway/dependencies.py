"""FastAPI dependencies shared by the routers."""

from typing import Annotated

from fastapi import Depends, Request

from services.errors import ModelNotLoaded
from services.gateway.runtime import GatewayRuntime


def get_runtime(request: Request) -> GatewayRuntime:
    """The gateway runtime the service installed at startup."""
    runtime: GatewayRuntime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise ModelNotLoaded("the gateway is still starting")
    return runtime


RuntimeDep = Annotated[GatewayRuntime, Depends(get_runtime)]
