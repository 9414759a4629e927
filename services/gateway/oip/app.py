"""The /v2 routes of the Open Inference Protocol: a thin adapter over the prediction service.

Credentials and scopes are the /api/v1 ones (models:read for metadata and model readiness,
predictions:write for inference); every error is the protocol's `{"error": "..."}`.
"""

import json
import logging
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from services.auth.scopes import MODELS_READ, PREDICTIONS_WRITE
from services.catalog import ServedModel
from services.errors import AppError, BadRequest, ModelNotFound, ValidationFailed
from services.gateway.app import API_VERSION
from services.gateway.dependencies import CallerDep, RuntimeDep, require
from services.gateway.oip.rows import (
    OUTPUTS,
    input_metadata,
    layout_parameters,
    output_metadata,
    output_tensors,
    rows_from_tensors,
)
from services.gateway.oip.schemas import (
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ProtocolError,
    ServerMetadata,
)
from services.gateway.oip.tensors import (
    HEADER_LENGTH,
    encode_output,
    parse_request,
    refuse_unsupported_output,
    wants_binary,
)
from services.gateway.runtime import GatewayRuntime
from services.http.context import current_request, new_request_id, note_model_version, runtime_in
from services.http.envelope import STATUS_CODES
from services.http.oip import OIP_PREFIX, oip_error
from services.pipeline.prediction_service import PredictionRequest

logger = logging.getLogger("services.gateway")
SERVER_NAME = "model-packaging"
EXTENSIONS = ["binary_tensor_data"]
MAX_ERROR_DETAILS = 10


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": ProtocolError, "description": STATUS_CODES[status][1]}
        for status in statuses
    }


READ_ERRORS = _errors(401, 403, 404, 429, 503)
INFER_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/InferenceRequest"}},
        "application/octet-stream": {
            "schema": {"type": "string", "format": "binary"},
            "description": "Binary tensor data extension: the JSON request (its length in the"
            " Inference-Header-Content-Length header), then each binary input's bytes.",
        },
    },
}
INFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_errors(400, 401, 403, 404, 422, 429, 503),
    200: {
        "model": InferenceResponse,
        "description": "Outputs `label` (BYTES [N]), `probabilities` (FP64 [N, classes]),"
        " `prediction_id` and `out_of_range` (BYTES [N]); as binary data after the JSON"
        " header when asked (`binary_data_output`, or an output's `binary_data`).",
        "content": {"application/octet-stream": {}},
    },
}

router = APIRouter(prefix=OIP_PREFIX, tags=["open inference protocol"])


def create_oip_app() -> FastAPI:
    """A new /v2 app, mounted at the root (its routes carry the /v2 prefix)."""
    app = FastAPI(
        title="Model packaging gateway: Open Inference Protocol",
        version=API_VERSION,
        description="KServe V2 / Open Inference Protocol REST, with Triton's binary tensor data"
        " extension; the same models, credentials, validation and prediction log as /api/v1.",
        docs_url=f"{OIP_PREFIX}/docs",
        redoc_url=None,
        openapi_url=f"{OIP_PREFIX}/openapi.json",
    )
    app.include_router(router)
    app.add_exception_handler(AppError, _app_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _request_invalid)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


@router.get(
    "/health/live",
    response_class=Response,
    responses={200: {"description": "Live (no body)"}},
    summary="Server liveness (200: live)",
)
async def live() -> Response:
    return Response(status_code=200)


@router.get(
    "/health/ready",
    response_class=Response,
    responses={200: {"description": "Ready (no body)"}, **_errors(400)},
    summary="Server readiness (200: ready; 400 as the protocol says for not ready)",
)
async def ready(request: Request) -> Response:
    runtime: GatewayRuntime | None = runtime_in(request.scope)
    if runtime is None:
        return _not_ready("The server is starting.")
    ok, checks = await runtime.readiness()
    if not ok:
        failing = sorted(name for name, detail in checks.items() if detail != "ok")
        return _not_ready(f"The server is not ready: {', '.join(failing)}.")
    return Response(status_code=200)


@router.get("", response_model=ServerMetadata, summary="Server metadata")
async def server_metadata() -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": API_VERSION, "extensions": EXTENSIONS}


@router.get(
    "/models/{name}",
    response_model=ModelMetadata,
    response_model_exclude_none=True,
    responses=READ_ERRORS,
    summary="Model metadata (the served version)",
    dependencies=[require(MODELS_READ)],
)
async def model_metadata(name: str, runtime: RuntimeDep) -> dict[str, Any]:
    return _metadata(runtime, _resolve(runtime, name, None))


@router.get(
    "/models/{name}/versions/{version}",
    response_model=ModelMetadata,
    response_model_exclude_none=True,
    responses=READ_ERRORS,
    summary="Model metadata (one version)",
    dependencies=[require(MODELS_READ)],
)
async def model_version_metadata(name: str, version: str, runtime: RuntimeDep) -> dict[str, Any]:
    return _metadata(runtime, _resolve(runtime, name, version))


@router.get(
    "/models/{name}/ready",
    response_class=Response,
    responses={200: {"description": "Ready (no body)"}, **_errors(400), **READ_ERRORS},
    summary="Model readiness (200: ready)",
    dependencies=[require(MODELS_READ)],
)
async def model_ready(name: str, runtime: RuntimeDep) -> Response:
    return await _model_ready(runtime, _resolve(runtime, name, None))


@router.get(
    "/models/{name}/versions/{version}/ready",
    response_class=Response,
    responses={200: {"description": "Ready (no body)"}, **_errors(400), **READ_ERRORS},
    summary="Model readiness, one version (200: ready)",
    dependencies=[require(MODELS_READ)],
)
async def model_version_ready(name: str, version: str, runtime: RuntimeDep) -> Response:
    return await _model_ready(runtime, _resolve(runtime, name, version))


@router.post(
    "/models/{name}/infer",
    response_class=Response,
    responses=INFER_RESPONSES,
    summary="Inference (the served version)",
    openapi_extra={"requestBody": INFER_BODY},
    dependencies=[require(PREDICTIONS_WRITE)],
)
async def infer(name: str, request: Request, runtime: RuntimeDep, caller: CallerDep) -> Response:
    return await _infer(request, runtime, caller, name, None)


@router.post(
    "/models/{name}/versions/{version}/infer",
    response_class=Response,
    responses=INFER_RESPONSES,
    summary="Inference (one version)",
    openapi_extra={"requestBody": INFER_BODY},
    dependencies=[require(PREDICTIONS_WRITE)],
)
async def infer_version(
    name: str, version: str, request: Request, runtime: RuntimeDep, caller: CallerDep
) -> Response:
    return await _infer(request, runtime, caller, name, version)


def _resolve(runtime: GatewayRuntime, name: str, version: str | None) -> ServedModel:
    wanted = name if version is None else f"{name}:{version}"
    if ":" in name or (version is not None and ":" in version):
        raise ModelNotFound(f"model {wanted!r} is not served")
    model = runtime.resolve(wanted)
    note_model_version(model.ref.tag)
    return model


def _metadata(runtime: GatewayRuntime, model: ServedModel) -> dict[str, Any]:
    classes = model.metadata.output_schema.classes
    return {
        "name": model.ref.name,
        "versions": [served.ref.version for served in runtime.catalog.versions(model.ref.name)],
        "platform": model.ref.framework,
        "inputs": input_metadata(model.metadata.feature_schema),
        "outputs": output_metadata(classes),
        "parameters": layout_parameters(model.metadata.feature_schema, classes),
    }


async def _model_ready(runtime: GatewayRuntime, model: ServedModel) -> Response:
    checks = await runtime.inference.readiness([model])
    if not all(ok for ok, _ in checks.values()):
        return _not_ready(f"model {model.ref.tag} is not ready")
    return Response(status_code=200)


def _not_ready(message: str) -> Response:
    """Readiness is false: the protocol answers a 4xx (Triton and MLServer say 400)."""
    return _protocol_error(400, "not_ready", message)


async def _infer(
    request: Request,
    runtime: GatewayRuntime,
    caller: CallerDep,
    name: str,
    version: str | None,
) -> Response:
    if request.headers.get("content-encoding", "identity").lower() != "identity":
        raise BadRequest("compressed request bodies are not supported")
    document, tensors = parse_request(await request.body(), request.headers.get(HEADER_LENGTH))
    outputs = _requested_outputs(document)
    model = _resolve(runtime, name, version)
    rows = rows_from_tensors(tensors, model.metadata.feature_schema)
    context = current_request.get()
    request_id = context.request_id if context else new_request_id()
    result = await runtime.predictions.predict(
        PredictionRequest(
            model=name if version is None else model.ref.tag,
            inputs=rows,
            caller=caller,
            request_id=request_id,
            use_cache="no-cache" not in request.headers.get("cache-control", "").lower(),
        )
    )
    produced = output_tensors(result, model.metadata.output_schema.classes)
    entries, chunks = [], []
    for output, binary in outputs:
        entry, raw = encode_output(produced[output], binary=binary)
        entries.append(entry)
        chunks.append(raw)
    header = json.dumps(
        {
            "model_name": result.model.name,
            "model_version": result.model.version,
            "id": document.id if document.id is not None else request_id,
            "outputs": entries,
        }
    ).encode("utf-8")
    if not any(entry.get("parameters") for entry in entries):
        return Response(header, media_type="application/json")
    return Response(
        header + b"".join(chunks),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(header))},
    )


def _requested_outputs(document: InferenceRequest) -> list[tuple[str, bool]]:
    """(output name, as binary) for each output to return: all of them unless some are named."""
    if document.outputs is None:
        binary = wants_binary(document, None)
        return [(output, binary) for output in OUTPUTS]
    chosen: list[tuple[str, bool]] = []
    for output in document.outputs:
        if output.name not in OUTPUTS:
            raise BadRequest(f"unknown output {output.name!r}; this model returns {list(OUTPUTS)}")
        if any(output.name == name for name, _ in chosen):
            raise BadRequest(f"output {output.name!r} is requested twice")
        refuse_unsupported_output(output)
        chosen.append((output.name, wants_binary(document, output)))
    return chosen


def _protocol_error(status: int, code: str, message: str) -> Response:
    context = current_request.get()
    if context is not None:
        context.error_code = code
    return Response(oip_error(message), status_code=status, media_type="application/json")


async def _app_error(_: Request, exc: AppError) -> Response:
    if exc.status_code >= 500:
        logger.error("%s: %s", exc.error_code, exc.message, exc_info=exc)
    return _protocol_error(exc.status_code, exc.error_code, _message(exc))


def _message(exc: AppError) -> str:
    """The error's message; for a validation error, with its first problems spelled out."""
    if not isinstance(exc, ValidationFailed):
        return exc.message
    problems = exc.details.get("errors", [])
    parts = [
        " ".join(
            part
            for part in (
                f"row {problem['row']}" if "row" in problem else "",
                f"{problem['field']}:" if "field" in problem else "",
                f"{problem.get('code')} ({problem.get('message')})",
            )
            if part
        )
        for problem in problems[:MAX_ERROR_DETAILS]
    ]
    more = (
        f"; and {len(problems) - MAX_ERROR_DETAILS} more"
        if len(problems) > MAX_ERROR_DETAILS
        else ""
    )
    return f"{exc.message}: " + "; ".join(parts) + more if parts else exc.message


async def _request_invalid(_: Request, exc: RequestValidationError) -> Response:
    return _protocol_error(400, "bad_request", "The request is malformed.")


async def _http_error(_: Request, exc: HTTPException) -> Response:
    code, message = STATUS_CODES.get(exc.status_code, ("error", "The request failed."))
    return _protocol_error(exc.status_code, code, message)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, plus the inference request schema (the route reads its body itself,
    since a binary body is not JSON), less FastAPI's 422 for path parameters (plain strings
    here, which never fail: a bad request is a 400 in the protocol's shape)."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        fastapi_422 = {"$ref": "#/components/schemas/HTTPValidationError"}
        for operations in document["paths"].values():
            for operation in operations.values():
                answer = operation["responses"].get("422", {})
                if answer.get("content", {}).get("application/json", {}).get("schema") == (
                    fastapi_422
                ):
                    del operation["responses"]["422"]
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        schema = InferenceRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components["InferenceRequest"] = schema
        app.openapi_schema = document
    return app.openapi_schema
