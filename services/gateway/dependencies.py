"""FastAPI dependencies shared by the routers."""

from typing import Annotated, Any

from fastapi import Depends, Request

from services.auth.authenticator import Principal
from services.auth.middleware import principal
from services.auth.scopes import grants
from services.errors import Forbidden, ModelNotLoaded, ServiceUnavailable, Unauthorized
from services.gateway.runtime import GatewayRuntime
from services.persistence import PredictionStore


async def get_runtime(request: Request) -> GatewayRuntime:
    """The gateway runtime the service installed at startup."""
    runtime: GatewayRuntime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise ModelNotLoaded("the gateway is still starting")
    return runtime


RuntimeDep = Annotated[GatewayRuntime, Depends(get_runtime)]


async def get_store(runtime: RuntimeDep) -> PredictionStore:
    """The prediction log; 503 where persistence is switched off (benchmarks only)."""
    if runtime.store is None:
        raise ServiceUnavailable("the prediction log is disabled on this deployment")
    return runtime.store


StoreDep = Annotated[PredictionStore, Depends(get_store)]


def require(scope: str) -> Any:
    """A route dependency: the caller's credential must carry `scope` (or admin)."""

    async def check(runtime: RuntimeDep) -> Principal | None:
        caller = principal()
        if caller is None:
            if runtime.auth_enabled:
                raise Unauthorized("authentication required")
            return None
        if not grants(caller.scopes, scope):
            raise Forbidden(
                f"this credential lacks the {scope!r} scope", details={"required_scope": scope}
            )
        return caller

    return Depends(check)
