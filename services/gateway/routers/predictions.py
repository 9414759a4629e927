"""/predictions: predict (201 only once the rows are durable), then read, label, delete, export."""

import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from db.models import Prediction
from db.repositories import predictions as repository
from services.auth.scopes import PREDICTIONS_READ, PREDICTIONS_WRITE
from services.errors import NotFound, ValidationFailed
from services.gateway.dependencies import RuntimeDep, StoreDep, require
from services.gateway.envelope import current_request, iso_utc, success
from services.gateway.query import parse_list_query
from services.gateway.registry import ServedModel
from services.gateway.runtime import GatewayRuntime
from services.gateway.schemas import (
    ERROR_RESPONSES,
    LabelUpdate,
    PredictionCreate,
    PredictionRecordEnvelope,
    PredictionRecordsEnvelope,
    PredictionsCreatedEnvelope,
)
from services.observability import OUT_OF_RANGE, PREDICTIONS
from services.pipeline.postprocess import prediction_outputs
from services.pipeline.validation import validate_rows

router = APIRouter(prefix="/predictions", tags=["predictions"], responses=ERROR_RESPONSES)
LIST_PARAMETERS = [
    {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
    for name in (
        "page",
        "limit",
        "sort",
        "filter[model]",
        "filter[model_version]",
        "filter[labelled]",
        "filter[created_after]",
        "filter[created_before]",
        "filter[principal]",
    )
]


@router.post(
    "",
    status_code=201,
    response_model=PredictionsCreatedEnvelope,
    summary="Predict one or more rows with one model",
    description="Send `Cache-Control: no-cache` to bypass the result cache.",
    dependencies=[require(PREDICTIONS_WRITE)],
)
async def create_predictions(
    body: PredictionCreate, runtime: RuntimeDep, request: Request
) -> JSONResponse:
    model = runtime.registry.resolve(body.model)
    context = current_request.get()
    if context is not None:
        context.model_version = model.ref.tag
    schema = model.metadata.feature_schema
    validated = validate_rows(
        body.inputs,
        schema,
        policy=runtime.settings.range_policy,
        max_rows=runtime.settings.max_rows,
    )
    started = time.perf_counter()
    bypass = "no-cache" in request.headers.get("cache-control", "").lower()
    probabilities = await _cached_predict(runtime, model, validated.rows, bypass=bypass)
    latency_ms = (time.perf_counter() - started) * 1000
    outputs = prediction_outputs(probabilities, model.metadata.output_schema.classes)
    now = datetime.now(UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "request_id": context.request_id if context else uuid.uuid4().hex,
            "model_name": model.ref.name,
            "model_version": model.ref.version,
            "inputs": row,
            "outputs": {**output, "out_of_range": flagged},
            "latency_ms": latency_ms,
            "principal": context.user_id if context else None,
            "created_at": now,
        }
        for row, output, flagged in zip(
            validated.rows, outputs, validated.out_of_range, strict=True
        )
    ]
    if runtime.store is not None:
        await runtime.store.record(rows)
    PREDICTIONS.labels(model=model.ref.name, version=model.ref.version).inc(len(rows))
    for flagged in validated.out_of_range:
        for feature in flagged:
            OUT_OF_RANGE.labels(model=model.ref.name, feature=feature).inc()
    data = {
        "predictions": [{"id": str(row["id"]), "outputs": row["outputs"]} for row in rows],
        "model": {"name": model.ref.name, "version": model.ref.version},
    }
    return JSONResponse(success(data), status_code=201)


async def _cached_predict(
    runtime: GatewayRuntime, model: ServedModel, rows: list[dict[str, Any]], *, bypass: bool
) -> list[list[float]]:
    """Probabilities from the result cache (keyed by model tag and canonical input), or the
    runner. A cached answer is still persisted as this caller's prediction."""
    cache = runtime.cache
    key = None
    if cache is not None:
        canonical = json.dumps(rows, sort_keys=True, separators=(",", ":"), allow_nan=False)
        digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        key = f"inference:v1:{model.ref.tag}:{digest}"
        if not bypass and (hit := await cache.get(key)) is not None:
            cached: list[list[float]] = json.loads(hit)
            return cached
    probabilities = await runtime.predict(model, model.metadata.feature_schema.encode_rows(rows))
    if cache is not None and key is not None:
        await cache.set(key, json.dumps(probabilities).encode("utf-8"))
    return probabilities


@router.get(
    "",
    response_model=PredictionRecordsEnvelope,
    summary="Page through predictions",
    openapi_extra={"parameters": LIST_PARAMETERS},
    dependencies=[require(PREDICTIONS_READ)],
)
async def list_predictions(request: Request, store: StoreDep) -> JSONResponse:
    page, query = parse_list_query(request.query_params)
    async with store.sessions() as session:
        total = await repository.count_predictions(session=session, query=query)
        rows = await repository.list_predictions(
            session=session, query=query, offset=page.offset, limit=page.limit
        )
    return JSONResponse(success([_public(row) for row in rows], **page.meta(total)))


@router.get(
    "/export",
    summary="Stream matching predictions as JSON lines",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
    dependencies=[require(PREDICTIONS_READ)],
    openapi_extra={"parameters": LIST_PARAMETERS[2:]},
)
async def export_predictions(request: Request, store: StoreDep) -> StreamingResponse:
    _, query = parse_list_query(request.query_params, paged=False)

    async def lines() -> AsyncIterator[bytes]:
        async with store.sessions() as session:
            async for row in repository.stream_predictions(session=session, query=query):
                yield json.dumps(_public(row)).encode("utf-8") + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.get(
    "/{prediction_id}",
    response_model=PredictionRecordEnvelope,
    summary="One prediction",
    dependencies=[require(PREDICTIONS_READ)],
)
async def get_prediction(prediction_id: uuid.UUID, store: StoreDep) -> JSONResponse:
    async with store.sessions() as session:
        row = await repository.get_prediction(session=session, prediction_id=prediction_id)
    if row is None:
        raise NotFound(f"no prediction {prediction_id}")
    return JSONResponse(success(_public(row)))


@router.patch(
    "/{prediction_id}",
    response_model=PredictionRecordEnvelope,
    summary="Record the ground-truth label",
    dependencies=[require(PREDICTIONS_WRITE)],
)
async def label_prediction(
    prediction_id: uuid.UUID, body: LabelUpdate, store: StoreDep
) -> JSONResponse:
    async with store.sessions() as session, session.begin():
        row = await repository.get_prediction(session=session, prediction_id=prediction_id)
        if row is None:
            raise NotFound(f"no prediction {prediction_id}")
        classes = list(row.outputs.get("probabilities", {}))
        if str(body.label) not in classes:
            raise ValidationFailed(
                f"label must be one of the model's classes {classes}",
                details={"errors": [{"field": "label", "code": "unknown_class"}]},
            )
        await repository.set_label(
            session=session,
            prediction_id=prediction_id,
            label=body.label,
            labelled_at=datetime.now(UTC),
        )
        await session.refresh(row)
    return JSONResponse(success(_public(row)))


@router.delete(
    "/{prediction_id}",
    status_code=204,
    response_class=Response,
    summary="Delete one prediction",
    dependencies=[require(PREDICTIONS_WRITE)],
)
async def delete_prediction(prediction_id: uuid.UUID, store: StoreDep) -> Response:
    async with store.sessions() as session, session.begin():
        deleted = await repository.delete_prediction(session=session, prediction_id=prediction_id)
    if not deleted:
        raise NotFound(f"no prediction {prediction_id}")
    return Response(status_code=204)


def _public(row: Prediction) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "request_id": row.request_id,
        "model": {"name": row.model_name, "version": row.model_version},
        "inputs": row.inputs,
        "outputs": row.outputs,
        "latency_ms": row.latency_ms,
        "principal": row.principal,
        "label": row.label,
        "labelled_at": iso_utc(row.labelled_at) if row.labelled_at else None,
        "created_at": iso_utc(row.created_at),
    }
