"""POST /predictions: validate against the model's schema, infer, answer 201."""

import uuid

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.gateway.dependencies import RuntimeDep
from services.gateway.envelope import current_request, success
from services.gateway.schemas import ERROR_RESPONSES, PredictionCreate, PredictionsCreatedEnvelope
from services.observability import OUT_OF_RANGE, PREDICTIONS
from services.pipeline.postprocess import prediction_outputs
from services.pipeline.validation import validate_rows

router = APIRouter(prefix="/predictions", tags=["predictions"], responses=ERROR_RESPONSES)


@router.post(
    "",
    status_code=201,
    response_model=PredictionsCreatedEnvelope,
    summary="Predict one or more rows with one model",
)
async def create_predictions(body: PredictionCreate, runtime: RuntimeDep) -> JSONResponse:
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
    probabilities = await runtime.predict(model, schema.encode_rows(validated.rows))
    outputs = prediction_outputs(probabilities, model.metadata.output_schema.classes)
    predictions = [
        {"id": str(uuid.uuid4()), "outputs": output, "out_of_range": flagged}
        for output, flagged in zip(outputs, validated.out_of_range, strict=True)
    ]
    PREDICTIONS.labels(model=model.ref.name, version=model.ref.version).inc(len(predictions))
    for flagged in validated.out_of_range:
        for feature in flagged:
            OUT_OF_RANGE.labels(model=model.ref.name, feature=feature).inc()
    data = {
        "predictions": predictions,
        "model": {"name": model.ref.name, "version": model.ref.version},
    }
    return JSONResponse(success(data), status_code=201)
