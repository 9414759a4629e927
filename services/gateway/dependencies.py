"""FastAPI dependencies shared by the routers: the runtime, the prediction log, scope checks."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

from services.auth.middleware import API_PREFIX
from services.auth.principal import Principal, authorize, principal_of
from services.auth.scopes import ADMIN, MODELS_READ, PREDICTIONS_READ, PREDICTIONS_WRITE
from services.errors import DatabaseUnavailable, ModelNotLoaded, ServiceUnavailable
from services.gateway.runtime import GatewayRuntime
from services.http.context import runtime_in
from services.persistence import PredictionStore, is_database_failure
from services.pipeline.prediction_service import PredictionService

# Declared for the OpenAPI document (Swagger's Authorize button); the auth middleware has
# already checked the credential, so neither refuses a request by itself. The token URL is
# absolute: a relative one resolves against the server URL (/api/v1) to /api/auth/token, and
# the /v2 document names the same token route.
SCOPE_DESCRIPTIONS = {
    PREDICTIONS_WRITE: "create and label predictions",
    PREDICTIONS_READ: "read the prediction log",
    MODELS_READ: "read served models",
    ADMIN: "manage users and API keys; implies every scope",
}
BEARER = OAuth2PasswordBearer(
    tokenUrl=f"{API_PREFIX}/auth/token", scopes=SCOPE_DESCRIPTIONS, auto_error=False
)
API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False)


async def get_runtime(request: Request) -> GatewayRuntime:
    """The gateway runtime, from the request's state (put there by the outermost middleware)."""
    runtime: GatewayRuntime | None = runtime_in(request.scope)
    if runtime is None:
        raise ModelNotLoaded("the gateway is still starting")
    return runtime


RuntimeDep = Annotated[GatewayRuntime, Depends(get_runtime)]


async def get_store(runtime: RuntimeDep) -> AsyncIterator[PredictionStore]:
    """The prediction log; 503 where persistence is switched off (benchmarks only).

    Every route that reads or writes the database goes through here, so this is where a
    database outage becomes a 503 `database_unavailable` with Retry-After (never a 500), and
    where the circuit breaker fails requests fast once the outage is known.
    """
    store = runtime.store
    if store is None:
        raise ServiceUnavailable("the prediction log is disabled on this deployment")
    store.admit(trial=True)
    try:
        yield store
    except Exception as exc:
        store.observe(exc)
        if is_database_failure(exc):
            raise DatabaseUnavailable(
                "the database is not available right now; retry later",
                retry_after_s=store.breaker.retry_after_s(),
            ) from exc
        raise
    store.observe(None)


StoreDep = Annotated[PredictionStore, Depends(get_store)]


async def get_predictions(runtime: RuntimeDep) -> PredictionService:
    """The prediction service every front door calls."""
    return runtime.predictions


PredictionServiceDep = Annotated[PredictionService, Depends(get_predictions)]


def require(scope: str) -> Any:
    """A route dependency: the caller's credential must carry `scope` (or admin)."""

    async def check(
        request: Request,
        runtime: RuntimeDep,
        _bearer: Annotated[str | None, Security(BEARER, scopes=[scope])],
        _api_key: Annotated[str | None, Security(API_KEY)],
    ) -> Principal | None:
        caller = principal_of(request.scope)
        authorize(caller, scope, auth_enabled=runtime.authenticator is not None)
        return caller

    return Depends(check)


async def get_caller(request: Request) -> Principal | None:
    """The authenticated caller (None when auth is off)."""
    return principal_of(request.scope)


CallerDep = Annotated[Principal | None, Depends(get_caller)]
