"""The one place a prediction happens, whichever front door it came through.

authorize -> route (the deployment picks the version: production, canary or the pinned one) ->
validate against its feature schema -> result cache -> runner (coalesced) -> shape outputs ->
durable log (committed before returning) -> metrics -> shadow copies, after the response.
Front doors (the REST router, and any other protocol) only translate requests and results.
"""

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.auth.principal import Principal, authorize
from services.auth.scopes import PREDICTIONS_WRITE
from services.cache import ResultCache, result_key
from services.catalog import ModelCatalog, ModelRef, ServedModel
from services.deployments.routing import Router, build_snapshot
from services.deployments.state import Role
from services.http.context import note_model_version
from services.observability.metrics import DEPLOYMENT_REQUESTS, OUT_OF_RANGE, PREDICTIONS
from services.persistence import PredictionStore
from services.pipeline.inference import Inference
from services.pipeline.postprocess import prediction_outputs
from services.pipeline.shadow import ShadowJob, ShadowQueue
from services.pipeline.validation import validate_rows
from services.settings import ServingSettings


@dataclass(frozen=True)
class PredictionRequest:
    """Rows to predict with one model, and who asks."""

    model: str
    inputs: Sequence[Any]
    caller: Principal | None
    request_id: str
    use_cache: bool = True


@dataclass(frozen=True)
class PredictedRow:
    """One stored prediction: its id and what the model answered."""

    id: uuid.UUID
    outputs: dict[str, Any]


@dataclass(frozen=True)
class PredictionResult:
    """What a front door turns into its response."""

    model: ModelRef
    rows: list[PredictedRow]
    latency_ms: float
    role: Role = "production"  # how the deployment chose `model`

    def public(self) -> dict[str, Any]:
        """The REST representation of the result."""
        return {
            "predictions": [{"id": str(row.id), "outputs": row.outputs} for row in self.rows],
            "model": {"name": self.model.name, "version": self.model.version},
        }


class PredictionService:
    """Validates, predicts, stores; 201-worthy only once the rows are durable."""

    def __init__(
        self,
        *,
        catalog: ModelCatalog,
        inference: Inference,
        settings: ServingSettings,
        store: PredictionStore | None,
        cache: ResultCache | None,
        auth_enabled: bool,
        router: Router | None = None,
        shadows: ShadowQueue | None = None,
    ) -> None:
        self.catalog = catalog
        self.inference = inference
        self.settings = settings
        self.store = store
        self.cache = cache
        self.auth_enabled = auth_enabled
        self.router = router or build_snapshot(catalog, {})
        self.shadows = shadows

    async def predict(self, request: PredictionRequest) -> PredictionResult:
        """Predict, log durably and return; AppError (4xx/5xx) on any problem."""
        authorize(request.caller, PREDICTIONS_WRITE, auth_enabled=self.auth_enabled)
        principal = request.caller.subject if request.caller else None
        # The request keeps this route to the end, whatever deployment change happens meanwhile.
        route = self.router.route(request.model, request_id=request.request_id, principal=principal)
        model = route.model
        note_model_version(model.ref.tag, route.role)
        validated = validate_rows(
            request.inputs,
            model.metadata.feature_schema,
            policy=self.settings.range_policy,
            max_rows=self.settings.max_rows,
        )
        started = time.perf_counter()
        probabilities = await self._probabilities(model, validated.rows, request.use_cache)
        latency_ms = (time.perf_counter() - started) * 1000
        outputs = prediction_outputs(probabilities, model.metadata.output_schema.classes)
        predicted = [
            PredictedRow(id=uuid.uuid4(), outputs={**output, "out_of_range": flagged})
            for output, flagged in zip(outputs, validated.out_of_range, strict=True)
        ]
        if self.store is not None:
            now = datetime.now(UTC)
            await self.store.record(
                [
                    {
                        "id": row.id,
                        "request_id": request.request_id,
                        "model_name": model.ref.name,
                        "model_version": model.ref.version,
                        "inputs": inputs,
                        "outputs": row.outputs,
                        "latency_ms": latency_ms,
                        "principal": principal,
                        "created_at": now,
                        "role": route.role,
                    }
                    for inputs, row in zip(validated.rows, predicted, strict=True)
                ]
            )
        PREDICTIONS.labels(model=model.ref.name, version=model.ref.version).inc(len(predicted))
        DEPLOYMENT_REQUESTS.labels(
            model=model.ref.name, version=model.ref.version, role=route.role
        ).inc()
        for flagged in validated.out_of_range:
            for feature in flagged:
                OUT_OF_RANGE.labels(model=model.ref.name, feature=feature).inc()
        if route.shadows and self.shadows is not None and self.store is not None:
            self.shadows.defer(
                ShadowJob(
                    request_id=request.request_id,
                    principal=principal,
                    rows=validated.rows,
                    primary_ids=[row.id for row in predicted],
                    shadows=route.shadows,
                )
            )
        return PredictionResult(
            model=model.ref,
            rows=predicted,
            latency_ms=latency_ms,
            role=route.role,
        )

    async def _probabilities(
        self, model: ServedModel, rows: list[dict[str, Any]], use_cache: bool
    ) -> list[list[float]]:
        """From the result cache (keyed by model tag and canonical input), or the runner. A
        cached answer is still stored as this caller's prediction."""
        key = result_key(model.ref.tag, rows) if self.cache is not None else None
        if self.cache is not None and key is not None and use_cache:
            cached = await self.cache.get_probabilities(key)
            if cached is not None:
                return cached
        encoded = model.metadata.feature_schema.encode_rows(rows)
        probabilities = await self.inference.probabilities(model, encoded)
        if self.cache is not None and key is not None:
            await self.cache.set_probabilities(key, probabilities)
        return probabilities
