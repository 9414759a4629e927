"""The BentoML client's front door: the Gateway's `predict` @bentoml.api, a thin adapter over the
prediction service, answering what POST /api/v1/predictions answers.

BentoML turns any exception raised inside an API into its own 500 (or a JSON array for its own
4xx), so errors come back as values here: the status and our error envelope, which BentoML's
clients raise as an exception carrying that status (bentoml.exceptions.NotFound for 404,
UnprocessableEntity for 422, BentoMLException with `error_code` 401/403 otherwise).
"""

import json
import logging
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request

from services.auth.principal import principal_of
from services.errors import AppError, ModelNotLoaded
from services.gateway.runtime import GatewayRuntime
from services.http.context import current_request, new_request_id, runtime_in
from services.http.envelope import error_document, success
from services.pipeline.prediction_service import PredictionRequest

logger = logging.getLogger("services.gateway")


async def predict_for_client(
    request: Request, model: str, inputs: Sequence[Any]
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): 200 and the REST success envelope, or the error status and envelope."""
    try:
        runtime: GatewayRuntime | None = runtime_in(request.scope)
        if runtime is None:
            raise ModelNotLoaded("the gateway is still starting")
        context = current_request.get()
        result = await runtime.predictions.predict(
            PredictionRequest(
                model=model,
                inputs=inputs,
                caller=principal_of(request.scope),
                request_id=context.request_id if context else new_request_id(),
                use_cache="no-cache" not in request.headers.get("cache-control", "").lower(),
            )
        )
    except AppError as exc:
        if exc.status_code >= 500:
            logger.error("%s: %s", exc.error_code, exc.message, exc_info=exc)
        document: dict[str, Any] = json.loads(
            error_document(exc.error_code, exc.message, exc.details)
        )
        return exc.status_code, document
    return 200, success(result.public())
