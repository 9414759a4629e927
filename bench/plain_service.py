"""The plain BentoML pattern from BentoML's docs, as a baseline for `bench.load`.

An `@bentoml.service` entry service with one plain `@bentoml.api` method (no FastAPI, no
middleware, no coalescing) that calls the runner service through `bentoml.depends(...)` once
per request. It uses the very runner services and model files the gateway uses, so a comparison
measures the entry service alone. The models come from `SERVING_MODELS` like the gateway's: one
(`SERVING_MODELS=cancer-rf`) or several; `bench.load` serves the benchmarked models.

    bentoml serve bench.plain_service:PlainGateway --port 3100

The route is `POST /api/v1/predictions` with the gateway's body, `{"model": ..., "inputs": [...]}`,
so one load script drives both; it answers 200 with the probabilities only.
"""

from typing import Any

import bentoml
from bentoml.exceptions import InvalidArgument, NotFound

from services.artifact.loader import parse_metadata
from services.artifact.metadata import ArtifactMetadata
from services.catalog import ModelRef, served_refs
from services.runners.protocol import PredictItem, PredictOutput
from services.runners.services import SklearnRunner, TorchRunner, XGBoostRunner


@bentoml.service(name="plain_gateway", workers=1, traffic={"timeout": 60})
class PlainGateway:
    """One `@bentoml.api`, one runner call per request: the docs' gateway -> model pattern."""

    sklearn_runner = bentoml.depends(SklearnRunner)
    xgboost_runner = bentoml.depends(XGBoostRunner)
    torch_runner = bentoml.depends(TorchRunner)

    def __init__(self) -> None:
        self.models: dict[str, tuple[ModelRef, ArtifactMetadata]] = {}
        for ref in served_refs():
            stored = bentoml.models.get(ref.tag)
            self.models[ref.name] = (ref, parse_metadata(stored.info.metadata, tag=ref.tag))
        self.runners = {
            "sklearn": self.sklearn_runner,
            "xgboost": self.xgboost_runner,
            "torch": self.torch_runner,
        }

    @bentoml.api(route="/api/v1/predictions")  # type: ignore[untyped-decorator]
    async def predict(self, model: str, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        """Class probabilities per row: minimal checks, encode, one runner call."""
        served = self.models.get(model.partition(":")[0])
        if served is None:
            raise NotFound(f"model {model!r} is not served")
        ref, metadata = served
        schema = metadata.feature_schema
        if not inputs or len(inputs) > 256:
            raise InvalidArgument("inputs needs 1 to 256 rows")
        if any(set(row) != set(schema.names) for row in inputs):
            raise InvalidArgument(f"each row needs exactly the features {schema.names}")
        try:
            matrix = schema.encode_rows(inputs)
        except (TypeError, ValueError, KeyError) as exc:
            raise InvalidArgument(f"inputs do not encode: {exc}") from None
        runner = self.runners[ref.framework]
        outputs = await runner.to_async.predict([PredictItem(model=ref.tag, rows=matrix.tolist())])
        output = PredictOutput.model_validate(outputs[0])
        return {"model": ref.tag, "probabilities": output.probabilities}
