"""The /api/v1 FastAPI app: routers per resource, and every error as the envelope."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from services.errors import AppError
from services.gateway.envelope import generic_error
from services.gateway.routers import api_keys, auth, models, predictions, users

logger = logging.getLogger("services.gateway")
API_TITLE = "Model packaging gateway"
API_VERSION = "1.0.0"


def create_app() -> FastAPI:
    """A new /api/v1 app; the gateway service installs its runtime in `app.state.runtime`."""
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


def _envelope(
    status: int,
    code: str,
    message: str,
    details: dict[str, object] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    content = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(content, status_code=status, headers=headers)


async def _app_error(_: Request, exc: AppError) -> JSONResponse:
    if exc.status_code >= 500:
        logger.error("%s: %s", exc.error_code, exc.message, exc_info=exc)
    return _envelope(exc.status_code, exc.error_code, exc.message, exc.details)


async def _request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        return _envelope(400, "bad_request", "The request body is not valid JSON.")
    if any(tuple(error.get("loc", ())) == ("body",) for error in errors):
        return _envelope(400, "bad_request", "The request body must be a JSON object.")
    details = [
        {
            "field": ".".join(str(part) for part in error.get("loc", ())),
            "code": error.get("type"),
            "message": error.get("msg"),
        }
        for error in errors
    ]
    return _envelope(422, "validation_error", "The request failed validation.", {"errors": details})


async def _http_error(_: Request, exc: HTTPException) -> Response:
    """404 and 405 inside /api/v1: the same generic envelope the middleware uses everywhere."""
    body = generic_error(exc.status_code)[1]
    return Response(
        body,
        status_code=exc.status_code,
        media_type="application/json",
        headers=getattr(exc, "headers", None),
    )
