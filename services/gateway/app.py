"""The /api/v1 FastAPI app: routers per resource, and every error as the envelope."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from services.errors import AppError, BadRequest, ValidationFailed
from services.gateway.routers import api_keys, auth, models, predictions, users
from services.http.envelope import error_document, generic_error

logger = logging.getLogger("services.gateway")
API_TITLE = "Model packaging gateway"
API_VERSION = "1.0.0"


def create_app() -> FastAPI:
    """A new /api/v1 app; it reaches the gateway runtime through each request's state."""
    app = FastAPI(
        title=API_TITLE,
        version=API_VERSION,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.include_router(auth.router)
    app.include_router(predictions.router)
    app.include_router(models.router)
    app.include_router(users.router)
    app.include_router(api_keys.router)
    app.add_exception_handler(AppError, _app_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _request_invalid)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    return app


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


async def _request_invalid(_: Request, exc: RequestValidationError) -> Response:
    return error_response(validation_error(exc))


def validation_error(exc: RequestValidationError) -> AppError:
    """FastAPI's validation errors as ours: a malformed body or query parameter is a 400 naming
    it; fields of a well-formed body are a 422 listing every problem."""
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        return BadRequest("The request body is not valid JSON.")
    if any(tuple(error.get("loc", ())) == ("body",) for error in errors):
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
