"""The /api/v1 FastAPI app: routers per resource, and every error as the envelope."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from services.errors import AppError, BadRequest, UnsupportedMediaType, ValidationFailed
from services.gateway.docs import add_docs
from services.gateway.openapi import with_served_models
from services.gateway.routers import (
    api_keys,
    auth,
    deployments,
    jobs,
    models,
    monitoring,
    predictions,
    users,
)
from services.gateway.runtime import GatewayRuntime
from services.gateway.schemas import ERROR_DESCRIPTIONS
from services.http.context import runtime_in
from services.http.envelope import error_document, generic_error

logger = logging.getLogger("services.gateway")
UNSUPPORTED_MEDIA_TYPE = {
    "description": ERROR_DESCRIPTIONS[415],
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
}
API_TITLE = "Model packaging gateway"
API_VERSION = "1.0.0"


def create_app() -> FastAPI:
    """A new /api/v1 app; it reaches the gateway runtime through each request's state."""
    app = FastAPI(
        title=API_TITLE,
        version=API_VERSION,
        docs_url=None,  # services.gateway.docs serves Swagger UI from local assets
        redoc_url=None,
        openapi_url=None,  # served below, refined for the served models
    )

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(served_openapi(app, request))

    add_docs(app, title=API_TITLE)
    app.include_router(auth.router)
    app.include_router(predictions.router)
    app.include_router(jobs.router)
    app.include_router(models.router)
    app.include_router(deployments.router)
    app.include_router(monitoring.router)
    app.include_router(users.router)
    app.include_router(api_keys.router)
    app.add_exception_handler(AppError, _app_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _request_invalid)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.openapi = lambda: _contract(app)  # type: ignore[method-assign]
    return app


def _contract(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, plus what the shared mechanisms answer on every route they cover:
    a route that takes a JSON body answers 415 to a body in another content type (one place,
    so no route can forget to document it)."""
    if app.openapi_schema is None:
        document = FastAPI.openapi(app)
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                content = operation.get("requestBody", {}).get("content", {})
                if "application/json" in content:
                    operation["responses"].setdefault("415", UNSUPPORTED_MEDIA_TYPE)
        app.openapi_schema = document
    return app.openapi_schema


def served_openapi(app: FastAPI, request: Request) -> dict[str, Any]:
    """The committed contract (`app.openapi()`, with the mount point as its server), refined
    for the models this deployment serves (services.gateway.openapi)."""
    document = dict(app.openapi())
    root_path = request.scope.get("root_path", "").rstrip("/")
    if root_path and root_path not in {s.get("url") for s in document.get("servers", [])}:
        document["servers"] = [{"url": root_path}, *document.get("servers", [])]
    runtime: GatewayRuntime | None = runtime_in(request.scope)
    if runtime is None:
        return document
    return with_served_models(document, runtime.catalog.all(), runtime.settings)


def error_response(exc: AppError) -> Response:
    """An AppError as the envelope, with its status."""
    if exc.status_code >= 500 and exc.retry_after_s is None:
        logger.error("%s: %s", exc.error_code, exc.message, exc_info=exc)
    elif exc.status_code >= 500:  # a known outage answered fast: the cause is logged once
        logger.warning("%s: %s", exc.error_code, exc.message)
    body = error_document(exc.error_code, exc.message, exc.details)
    headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s is not None else None
    return Response(
        body, status_code=exc.status_code, media_type="application/json", headers=headers
    )


async def _app_error(_: Request, exc: AppError) -> Response:
    return error_response(exc)


async def _request_invalid(request: Request, exc: RequestValidationError) -> Response:
    return error_response(validation_error(exc, request.headers.get("content-type")))


def validation_error(exc: RequestValidationError, content_type: str | None = None) -> AppError:
    """FastAPI's validation errors as ours: a body in another content type is a 415 saying what
    to send; a malformed body or query parameter is a 400 naming it; fields of a well-formed
    body are a 422 listing every problem."""
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        return BadRequest("The request body is not valid JSON.")
    body_errors = [error for error in errors if tuple(error.get("loc", ())) == ("body",)]
    # FastAPI parses a body as JSON only when its content type says JSON (or is absent).
    if body_errors and content_type and not _is_json(content_type):
        return UnsupportedMediaType(
            f"The request body must be JSON sent with Content-Type: application/json; this "
            f"request says {content_type!r}.",
            details={"content_type": content_type, "expected": "application/json"},
        )
    if body_errors:
        return BadRequest("The request body must be a JSON object.")
    for error in errors:
        location = tuple(error.get("loc", ()))
        if len(location) >= 2 and location[0] == "query":
            parameter = str(location[1])
            return BadRequest(
                f"query parameter {parameter!r}: {_reason(error)}",
                details={"parameter": parameter},
            )
    details = [
        {
            "field": ".".join(str(part) for part in error.get("loc", ())),
            "code": error.get("type"),
            "message": error.get("msg"),
        }
        for error in errors
    ]
    return ValidationFailed("The request failed validation.", details={"errors": details})


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _reason(error: dict[str, object]) -> str:
    if error.get("type") == "extra_forbidden":
        return "unknown query parameter"
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")


async def _http_error(_: Request, exc: HTTPException) -> Response:
    """404 and 405 inside /api/v1: the same generic envelope the middleware uses everywhere."""
    body = generic_error(exc.status_code)[1]
    return Response(
        body,
        status_code=exc.status_code,
        media_type="application/json",
        headers=getattr(exc, "headers", None),
    )
