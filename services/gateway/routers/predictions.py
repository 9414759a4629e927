"""/predictions: predict (201 only once the rows are durable), then read, label, delete, export.

POST is a thin adapter over the prediction service, which every front door shares.
"""

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from db.repositories import predictions as repository
from services.auth.scopes import PREDICTIONS_READ, PREDICTIONS_WRITE
from services.errors import DatabaseUnavailable, NotFound, ValidationFailed
from services.gateway.dependencies import CallerDep, PredictionServiceDep, StoreDep, require
from services.gateway.query import PredictionFilters, PredictionListQuery
from services.gateway.schemas import (
    ERROR_RESPONSES,
    LabelUpdate,
    PredictionCreate,
    PredictionRecord,
    PredictionsCreated,
    error_responses,
)
from services.http.context import current_request, new_request_id
from services.http.envelope import Envelope, PageEnvelope, success
from services.pipeline.idempotency import HEADER as IDEMPOTENCY_HEADER
from services.pipeline.prediction_service import PredictionRequest

router = APIRouter(prefix="/predictions", tags=["predictions"], responses=ERROR_RESPONSES)


@router.post(
    "",
    status_code=201,
    response_model=Envelope[PredictionsCreated],
    summary="Predict one or more rows with one model",
    description="Send `Cache-Control: no-cache` to bypass the result cache. With an "
    "`Idempotency-Key` header (1-255 visible ASCII characters, kept per caller for "
    "SERVING_IDEMPOTENCY_TTL_S, default 24 h), a retry with the same body replays the first 201 "
    "(same ids, `Idempotent-Replayed: true`); the same key with another body is a 409.",
    responses=error_responses(409),
    dependencies=[require(PREDICTIONS_WRITE)],
)
async def create_predictions(
    body: PredictionCreate,
    service: PredictionServiceDep,
    caller: CallerDep,
    request: Request,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias=IDEMPOTENCY_HEADER)] = None,
) -> dict[str, Any]:
    context = current_request.get()
    result = await service.predict(
        PredictionRequest(
            model=body.model,
            inputs=body.inputs,
            caller=caller,
            request_id=context.request_id if context else new_request_id(),
            use_cache="no-cache" not in request.headers.get("cache-control", "").lower(),
            idempotency_key=idempotency_key,
        )
    )
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return success(result.public())


@router.get(
    "",
    response_model=PageEnvelope[PredictionRecord],
    summary="Page through predictions",
    dependencies=[require(PREDICTIONS_READ)],
)
async def list_predictions(
    params: Annotated[PredictionListQuery, Query()], store: StoreDep
) -> dict[str, Any]:
    query = params.query()
    async with store.sessions() as session:
        total = await repository.count_predictions(session=session, query=query)
        rows = await repository.list_predictions(
            session=session, query=query, offset=params.offset, limit=params.limit
        )
    return success([PredictionRecord.of(row) for row in rows], **params.meta(total))


@router.get(
    "/export",
    summary="Stream matching predictions as JSON lines",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
    dependencies=[require(PREDICTIONS_READ)],
)
async def export_predictions(
    params: Annotated[PredictionFilters, Query()], store: StoreDep
) -> StreamingResponse:
    # The query runs and its first row arrives before the 200 is sent: whatever the database
    # refuses is an error response, not a connection dropped in the middle of the body.
    resources = AsyncExitStack()
    try:
        session = await resources.enter_async_context(store.sessions())
        rows = repository.stream_predictions(session=session, query=params.query())
        resources.push_async_callback(rows.aclose)
        first = await anext(rows, None)
    except Exception as exc:
        await resources.aclose()
        raise DatabaseUnavailable("the export could not be started; retry later") from exc

    async def lines() -> AsyncIterator[bytes]:
        try:
            if first is None:
                return
            yield PredictionRecord.of(first).model_dump_json().encode("utf-8") + b"\n"
            async for row in rows:
                yield PredictionRecord.of(row).model_dump_json().encode("utf-8") + b"\n"
        finally:
            await resources.aclose()

    # The background task also runs when the client leaves before the body starts.
    return StreamingResponse(
        lines(), media_type="application/x-ndjson", background=BackgroundTask(resources.aclose)
    )


@router.get(
    "/{prediction_id}",
    response_model=Envelope[PredictionRecord],
    summary="One prediction",
    dependencies=[require(PREDICTIONS_READ)],
)
async def get_prediction(prediction_id: uuid.UUID, store: StoreDep) -> dict[str, Any]:
    async with store.sessions() as session:
        row = await repository.get_prediction(session=session, prediction_id=prediction_id)
    if row is None:
        raise NotFound(f"no prediction {prediction_id}")
    return success(PredictionRecord.of(row))


@router.patch(
    "/{prediction_id}",
    response_model=Envelope[PredictionRecord],
    summary="Record the ground-truth label",
    dependencies=[require(PREDICTIONS_WRITE)],
)
async def label_prediction(
    prediction_id: uuid.UUID, body: LabelUpdate, store: StoreDep
) -> dict[str, Any]:
    async with store.sessions() as session, session.begin():
        row = await repository.get_prediction(session=session, prediction_id=prediction_id)
        if row is None:
            raise NotFound(f"no prediction {prediction_id}")
        if row.shadow_of is not None:
            raise ValidationFailed(
                f"{prediction_id} is a shadow prediction: label the production prediction "
                f"{row.shadow_of}, whose label scores its shadows too",
                details={"errors": [{"field": "label", "code": "shadow_prediction"}]},
            )
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
    return success(PredictionRecord.of(row))


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
