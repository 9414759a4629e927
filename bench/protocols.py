"""What each server is sent and what it answers: one workload, four JSON APIs.

A `Workload` is N rows of one model (its golden inputs that pass the gateway's validation,
repeated to N) with the outputs the export recorded for them. Every server gets the same rows in
its natural JSON form, and its answer to the readiness probe is compared with those outputs, so a
run proves that every server serves the same model and gives the same numbers.
"""

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

PREDICT_PATH = "/api/v1/predictions"
JsonScalar = str | int | float | bool | None


@dataclass(frozen=True)
class Workload:
    """The rows every server is sent for one (model, rows per request) cell."""

    model: str
    inputs: tuple[dict[str, JsonScalar], ...]
    expected: tuple[tuple[float, ...], ...]
    features: tuple[str, ...]
    classes: tuple[str, ...]

    @property
    def rows(self) -> int:
        return len(self.inputs)


class RequestFormat(Protocol):
    """One server's API: where to POST, the body, and the probabilities in its answer."""

    name: str

    def path(self, work: Workload) -> str: ...

    def body(self, work: Workload) -> bytes: ...

    def probabilities(self, answer: Any, work: Workload) -> list[list[float]]: ...


class ProjectFormat:
    """`POST /api/v1/predictions {"model", "inputs": [objects]}` -> the `{data, meta}` envelope."""

    name = "project"

    def path(self, work: Workload) -> str:
        return PREDICT_PATH

    def body(self, work: Workload) -> bytes:
        return _dumps({"model": work.model, "inputs": list(work.inputs)})

    def probabilities(self, answer: Any, work: Workload) -> list[list[float]]:
        rows = answer["data"]["predictions"]
        return [[row["outputs"]["probabilities"][c] for c in work.classes] for row in rows]


class PlainFormat(ProjectFormat):
    """bench/plain_service.py: the project's body, answered `{"model", "probabilities"}`."""

    name = "plain"

    def probabilities(self, answer: Any, work: Workload) -> list[list[float]]:
        return [list(row) for row in answer["probabilities"]]


class LitServeFormat:
    """bench/peers/litserve_server.py: `POST /predict {"inputs": [objects]}`."""

    name = "litserve"

    def path(self, work: Workload) -> str:
        return "/predict"

    def body(self, work: Workload) -> bytes:
        return _dumps({"inputs": list(work.inputs)})

    def probabilities(self, answer: Any, work: Workload) -> list[list[float]]:
        return [list(row) for row in answer["probabilities"]]


class MLServerFormat:
    """Open Inference Protocol (V2): one FP64 tensor [rows, features], row-major, in model order."""

    name = "mlserver"

    def path(self, work: Workload) -> str:
        return f"/v2/models/{work.model}/infer"

    def body(self, work: Workload) -> bytes:
        data: list[float] = []
        for row in work.inputs:
            for name in work.features:
                value = row[name]
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise ValueError(
                        f"{work.model}: {name} is not numeric; V2 FP64 cannot carry it"
                    )
                data.append(float(value))
        tensor = {
            "name": "input-0",
            "shape": [work.rows, len(work.features)],
            "datatype": "FP64",
            "data": data,
        }
        return _dumps({"inputs": [tensor]})

    def probabilities(self, answer: Any, work: Workload) -> list[list[float]]:
        output = answer["outputs"][0]
        rows, width = output["shape"]
        flat = output["data"]
        return [list(flat[i * width : (i + 1) * width]) for i in range(rows)]


FORMATS: dict[str, RequestFormat] = {
    f.name: f for f in (ProjectFormat(), PlainFormat(), LitServeFormat(), MLServerFormat())
}


def largest_difference(actual: Sequence[Sequence[float]], work: Workload) -> float:
    """The largest absolute difference from the recorded outputs (inf on a shape mismatch)."""
    if len(actual) != work.rows or any(
        len(a) != len(e) for a, e in zip(actual, work.expected, strict=True)
    ):
        return math.inf
    pairs = zip(actual, work.expected, strict=True)
    return max(
        (abs(a - e) for row, exp in pairs for a, e in zip(row, exp, strict=True)), default=0.0
    )


def build_workload(model: str, rows: int) -> Workload:
    """`rows` golden inputs of `model` (from the store) that pass validation, with their outputs."""
    import bentoml

    from services.artifact.loader import parse_metadata
    from services.errors import AppError
    from services.pipeline.validation import validate_rows

    stored = bentoml.models.get(model)
    metadata = parse_metadata(stored.info.metadata, tag=str(stored.tag))
    golden = metadata.golden_examples
    usable = []
    for row, outputs in zip(golden.inputs, golden.outputs, strict=True):
        try:
            validate_rows([row], metadata.feature_schema, policy="reject", max_rows=1)
        except AppError:
            continue
        usable.append((row, tuple(outputs)))
    if not usable:
        raise SystemExit(f"{stored.tag}: no golden input passes validation")
    chosen = [usable[i % len(usable)] for i in range(rows)]
    return Workload(
        model=model,
        inputs=tuple(row for row, _ in chosen),
        expected=tuple(outputs for _, outputs in chosen),
        features=tuple(metadata.feature_schema.names),
        classes=tuple(str(label) for label in metadata.output_schema.classes),
    )


def _dumps(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()
