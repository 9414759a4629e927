"""Evaluate a staged model artifact and write it, with its full contract, into the BentoML store.

Everything is checked before the store is touched; the store write is BentoML's own
temporary-directory-then-copy, and the stored model is loaded back and verified before the
export reports success (a model that fails that check is deleted again).
"""

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import ValidationError

from services.artifact.adapters import Predictor, get_adapter
from services.artifact.adapters.base import check_classes, check_width
from services.artifact.digests import DataDigest, directory_digests
from services.artifact.execution import ExecutionPlan, PlannedPredictor, measure_execution
from services.artifact.loader import load_from_store
from services.artifact.metadata import (
    ArtifactMetadata,
    DataProvenance,
    ExecutionRecord,
    GoldenExamples,
)
from services.artifact.schema import (
    ClassLabel,
    FeatureSchema,
    FeatureSpec,
    JsonScalar,
    OutputSchema,
)
from services.errors import AppError
from training_export import progress
from training_export.errors import ExportError
from training_export.evaluate import classification_metrics
from training_export.provenance import git_commit, library_versions
from training_export.reference import export_reference
from training_export.schema_inference import RangeObserver
from training_export.tables import FrameSource
from training_export.validation import FrameChecker, _label_key, label_index


@dataclass(frozen=True)
class ExportRequest:
    """One model to export: a staged artifact file plus what is needed to evaluate it."""

    name: str
    framework: str
    staging_dir: Path
    model_file: str
    features: Sequence[FeatureSpec]
    target: str
    eval_source: FrameSource
    evaluation: DataProvenance
    training: DataProvenance
    version: str | None = None
    classes: Sequence[ClassLabel] | None = None
    ranges_from_eval: bool = False
    seed: int | None = None
    recipe: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    golden_count: int = 16
    train_source: FrameSource | None = None  # else the reference distribution is the eval data's


@dataclass
class _EvalScan:
    """What one validating pass over the evaluation data learns."""

    rows: int = 0
    digest: str | None = None
    labels: dict[str, ClassLabel] = field(default_factory=dict)
    candidates: dict[str, list[dict[str, JsonScalar]]] = field(default_factory=dict)
    observer: RangeObserver | None = None


def export_model(request: ExportRequest) -> str:
    """Validate, evaluate and store one model; return its tag. ExportError on any problem."""
    if request.version is not None:
        ensure_new_tag(request.name, request.version)
    try:
        return _export(request)
    except AppError as exc:
        raise ExportError(exc.message) from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ExportError(f"the feature schema does not fit the data: {first['msg']}") from exc


def ensure_new_tag(name: str, version: str) -> None:
    """Refuse an invalid tag, or one that is already in the store (tags are never overwritten)."""
    import bentoml
    from bentoml.exceptions import BentoMLException, NotFound

    try:
        bentoml.models.get(f"{name}:{version}")
    except NotFound:
        return
    except (BentoMLException, ValueError) as exc:
        raise ExportError(f"invalid model tag {name}:{version}: {exc}") from None
    raise ExportError(
        f"model {name}:{version} already exists in the store; "
        "tags are never overwritten, choose another --version"
    )


def _export(request: ExportRequest) -> str:
    adapter = get_adapter(request.framework)
    model_path = request.staging_dir / request.model_file
    with progress.step(f"loading {request.framework} model {request.model_file}"):
        predictor = adapter.load(model_path)
        check_width(predictor, len(request.features))
    with progress.step("validating evaluation data"):
        scan = _scan_evaluation(request, getattr(predictor, "classes", None))
    classes = _resolve_classes(request, predictor, scan)
    output_schema = OutputSchema(target=request.target, classes=tuple(classes))
    check_classes(predictor, len(classes))
    schema = (
        scan.observer.apply(request.features)
        if scan.observer is not None
        else FeatureSchema(features=tuple(request.features))
    )
    golden_inputs = _pick_golden(scan, classes, request.golden_count)
    x_golden = schema.encode_rows(golden_inputs)
    execution = _measure_execution(predictor, x_golden, len(classes))
    # Goldens and metrics are computed exactly as the runners will compute them.
    predictor = PlannedPredictor(
        predictor, ExecutionPlan(mode=execution.mode, shapes=execution.shapes)
    )
    golden_outputs = predictor.predict_proba(x_golden)
    with progress.step(f"evaluating on {scan.rows} holdout rows"):
        metrics = _evaluate(request, schema, classes, predictor)
    with progress.step("recording the reference distribution"):
        reference = export_reference(
            schema=schema, train_source=request.train_source, eval_source=request.eval_source
        )
    metadata = ArtifactMetadata(
        framework=request.framework,
        artifact_files=directory_digests(request.staging_dir, [request.model_file]),
        model_file=request.model_file,
        batch_invariant=execution.mode == "batched",
        model_format=adapter.model_format(request.model_file),
        execution=execution,
        feature_schema=schema,
        output_schema=output_schema,
        metrics=metrics,
        evaluation_data=request.evaluation.model_copy(
            update={"sha256": scan.digest, "rows": scan.rows}
        ),
        training_data=request.training,
        seed=request.seed,
        library_versions=library_versions(request.framework),
        git_commit=git_commit(),
        recipe=request.recipe,
        hyperparameters=request.hyperparameters,
        golden_examples=GoldenExamples(inputs=golden_inputs, outputs=golden_outputs.tolist()),
        kernels=adapter.kernels(),
        reference_distribution=reference,
    )
    version = request.version or content_version(metadata)
    ensure_new_tag(request.name, version)
    with progress.step(f"writing {request.name}:{version} to the model store"):
        return _store(request, metadata, version)


def _scan_evaluation(
    request: ExportRequest, model_classes: Sequence[ClassLabel] | None
) -> _EvalScan:
    classes = request.classes or model_classes
    checker = FrameChecker(
        schema=FeatureSchema(features=tuple(request.features)),
        target=request.target,
        classes=classes,
        what="evaluation data",
    )
    digest = DataDigest([*(spec.name for spec in request.features), request.target])
    scan = _EvalScan(observer=RangeObserver(request.features) if request.ranges_from_eval else None)
    for frame in request.eval_source():
        checker.check(frame)
        digest.update({name: frame[name].to_numpy() for name in frame.columns})
        if scan.observer is not None:
            scan.observer.update(frame)
        _collect_candidates(scan, frame, request)
    checker.finish()
    scan.rows = checker.rows
    scan.digest = digest.hexdigest()
    if scan.rows < request.golden_count:
        raise ExportError(
            f"evaluation data has {scan.rows} rows; at least {request.golden_count} are needed "
            "for the golden examples"
        )
    return scan


def _collect_candidates(scan: _EvalScan, frame: pd.DataFrame, request: ExportRequest) -> None:
    """Keep the first rows of every label, for a golden set that covers every class."""
    targets = frame[request.target]
    keys = targets.map(_label_key)
    for key, positions in keys.groupby(keys, sort=False).indices.items():
        scan.labels.setdefault(str(key), targets.iloc[positions[0]])
        bucket = scan.candidates.setdefault(str(key), [])
        for position in positions[: request.golden_count - len(bucket)]:
            bucket.append(_json_row(frame.iloc[position], request.features))


def _json_row(row: pd.Series, features: Sequence[FeatureSpec]) -> dict[str, JsonScalar]:
    values: dict[str, JsonScalar] = {}
    for spec in features:
        value = row[spec.name]
        if pd.isna(value):
            values[spec.name] = None
        elif spec.dtype == "category":
            values[spec.name] = str(value)
        elif spec.dtype == "bool":
            values[spec.name] = bool(value)
        elif spec.dtype == "int":
            values[spec.name] = int(value)
        else:
            values[spec.name] = float(value)
    return values


def _resolve_classes(
    request: ExportRequest, predictor: Predictor, scan: _EvalScan
) -> list[ClassLabel]:
    if request.classes is not None:
        return list(request.classes)
    model_classes = getattr(predictor, "classes", None)
    if model_classes is not None:
        return list(model_classes)
    observed = sorted(scan.labels.values(), key=_label_key)
    return [value.item() if isinstance(value, np.generic) else value for value in observed]


def _pick_golden(
    scan: _EvalScan, classes: Sequence[ClassLabel], count: int
) -> list[dict[str, JsonScalar]]:
    """Round-robin over the classes in output order, so rare classes are represented."""
    queues = [list(scan.candidates.get(_label_key(label), [])) for label in classes]
    golden: list[dict[str, JsonScalar]] = []
    while len(golden) < count:
        for queue in queues:
            if queue and len(golden) < count:
                golden.append(queue.pop(0))
    return golden


def _measure_execution(
    predictor: Predictor, x: npt.NDArray[np.float32], n_classes: int
) -> ExecutionRecord:
    """How batches must run so that each golden row gives identical bits in any batch."""
    batched = predictor.predict_proba(x)
    if batched.ndim != 2 or batched.shape[1] != n_classes:
        raise ExportError(
            f"the model returns {batched.shape[1:]} outputs per row; the output schema has "
            f"{n_classes} classes"
        )
    execution = measure_execution(predictor.predict_proba, x)
    if execution is None:
        raise ExportError(
            "no batch execution gives a row identical outputs wherever it lands (tried any "
            "batch size, and padding to fixed shapes of 8 to 512 rows); the model cannot be "
            "served batched with reproducible outputs"
        )
    return execution


def _evaluate(
    request: ExportRequest,
    schema: FeatureSchema,
    classes: Sequence[ClassLabel],
    predictor: Predictor,
) -> dict[str, float]:
    truths: list[npt.NDArray[np.int64]] = []
    outputs: list[npt.NDArray[np.float64]] = []
    for frame in request.eval_source():
        outputs.append(predictor.predict_proba(schema.encode_columns(frame_columns(frame, schema))))
        truths.append(label_index(frame[request.target], classes))
    return classification_metrics(np.concatenate(truths), np.concatenate(outputs))


def frame_columns(frame: pd.DataFrame, schema: FeatureSchema) -> dict[str, npt.NDArray[np.generic]]:
    """The schema's columns as arrays the encoder takes (NaN or None for missing values)."""
    columns: dict[str, npt.NDArray[np.generic]] = {}
    for spec in schema.features:
        column = frame[spec.name]
        if spec.dtype == "category":
            columns[spec.name] = column.astype(object).where(column.notna(), None).to_numpy()
        else:
            columns[spec.name] = column.to_numpy(dtype=np.float64, na_value=np.nan)
    return columns


def content_version(metadata: ArtifactMetadata) -> str:
    """A version derived from what the model does and how it was made, not from file bytes.

    PyTorch archives differ byte for byte between identical saves (a random serialization id),
    so the artifact digests would give the same model a new version on every run.
    """
    content = {
        "framework": metadata.framework,
        "training_data": metadata.training_data.sha256,
        "hyperparameters": metadata.hyperparameters,
        "seed": metadata.seed,
        "feature_schema": metadata.feature_schema.model_dump(mode="json"),
        "metrics": metadata.metrics,
        "golden_outputs": metadata.golden_examples.outputs,
    }
    encoded = json.dumps(content, sort_keys=True).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()[:16]


def _store(request: ExportRequest, metadata: ArtifactMetadata, version: str) -> str:
    import bentoml
    from bentoml._internal.types import ModelSignatureDict
    from bentoml.models import ModelContext

    tag = f"{request.name}:{version}"
    labels = {"framework": request.framework, "stage": "candidate"}
    if request.recipe:
        labels["recipe"] = request.recipe
    context = ModelContext(
        framework_name=request.framework, framework_versions=metadata.library_versions
    )
    signatures: dict[str, ModelSignatureDict] = {"predict": {"batchable": True, "batch_dim": 0}}
    with bentoml.models.create(
        tag,
        labels=labels,
        metadata=metadata.to_store(),
        signatures=signatures,
        module="services.artifact",
        context=context,
    ) as model:
        for name in metadata.artifact_files:
            shutil.copy2(request.staging_dir / name, Path(model.path) / name)
    try:
        load_from_store(tag)
    except AppError as exc:
        bentoml.models.delete(tag)
        raise ExportError(
            f"{tag} failed verification after it was written, and was removed: {exc.message}"
        ) from exc
    return tag
