"""Load an exported model only after its digests and golden examples check out."""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from services.artifact.adapters import Predictor, get_adapter
from services.artifact.adapters.base import check_width
from services.artifact.digests import file_sha256
from services.artifact.execution import (
    CANDIDATE_SHAPES,
    ExecutionPlan,
    PlannedPredictor,
    agreeing_shapes,
    verify_execution,
)
from services.artifact.metadata import ArtifactMetadata, ExecutionRecord
from services.errors import ArtifactMismatch, InvalidFeatureSchema

logger = logging.getLogger("services.artifact")


@dataclass(frozen=True)
class VerifiedModel:
    """A model whose files, schema and golden outputs matched its export record."""

    name: str
    version: str
    metadata: ArtifactMetadata
    predictor: Predictor
    execution: ExecutionPlan

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.version}"


def parse_metadata(raw: Mapping[str, Any], *, tag: str) -> ArtifactMetadata:
    """The typed metadata of `tag`, or InvalidFeatureSchema naming what is wrong."""
    try:
        return ArtifactMetadata.model_validate(dict(raw))
    except ValidationError as exc:
        fields = sorted({".".join(map(str, error["loc"])) for error in exc.errors()})
        raise InvalidFeatureSchema(
            f"{tag}: metadata does not follow the artifact contract",
            details={"fields": fields[:20]},
        ) from exc


def verify_digests(directory: Path, metadata: ArtifactMetadata, *, tag: str) -> None:
    """Every recorded artifact file exists and has the recorded SHA-256."""
    for name, expected in metadata.artifact_files.items():
        path = directory / name
        if not path.is_file():
            raise ArtifactMismatch(f"{tag}: artifact file {name} is missing")
        if file_sha256(path) != expected:
            raise ArtifactMismatch(f"{tag}: artifact file {name} does not match its SHA-256")
    if metadata.model_file not in metadata.artifact_files:
        raise ArtifactMismatch(f"{tag}: the model file has no recorded digest")


def verify_golden(
    predictor: Predictor, metadata: ArtifactMetadata, *, tag: str, tolerance: float = 0.0
) -> None:
    """The golden inputs give exactly the recorded outputs (within `tolerance`, if one is given:
    only for a device other than the CPU that recorded them)."""
    golden = metadata.golden_examples
    x = metadata.feature_schema.encode_rows(golden.inputs)
    expected = np.asarray(golden.outputs, dtype=np.float64)
    actual = predictor.predict_proba(x)
    if actual.shape != expected.shape or not _matches(actual, expected, tolerance):
        worst = float(np.max(np.abs(actual - expected))) if actual.shape == expected.shape else None
        raise ArtifactMismatch(
            f"{tag}: golden examples do not reproduce their recorded outputs",
            details={"max_abs_difference": worst, "shape": list(actual.shape)},
        )


def plan_execution(
    predictor: Predictor, metadata: ArtifactMetadata, *, tag: str, exact: bool
) -> ExecutionPlan:
    """The recorded execution, verified here on the golden rows; ArtifactMismatch if it fails.

    On the kernels that recorded it (`exact`) the record must hold as written. On other kernels
    (another CPU generation, a GPU), where blocking differs, the padded shapes that hold here are
    chosen among the recorded and the candidate shapes, with a warning. Exports that
    predate execution records run as their `batch_invariant` flag says: batched if it holds,
    else one row at a time (the only case that ever runs row by row).
    """
    record = metadata.execution
    if record is None:
        if not metadata.batch_invariant:
            logger.warning(
                "%s: exported before execution records and not batch-invariant: served one "
                "row at a time; export it again to serve it batched",
                tag,
            )
            return ExecutionPlan(mode="rowwise")
        record = ExecutionRecord(mode="batched")
    x = metadata.feature_schema.encode_rows(metadata.golden_examples.inputs)
    if verify_execution(predictor.predict_proba, x, record) is not None:
        return ExecutionPlan(mode=record.mode, shapes=record.shapes)
    recorded = ExecutionPlan(mode=record.mode, shapes=record.shapes).describe()
    details: dict[str, Any] = {"mode": record.mode, "shapes": list(record.shapes)}
    if exact:
        raise ArtifactMismatch(
            f"{tag}: the recorded execution ({recorded}) does not give a golden row identical "
            "outputs in every batch",
            details=details,
        )
    candidates = sorted({*record.shapes, *CANDIDATE_SHAPES})
    shapes = agreeing_shapes(predictor.predict_proba, x, candidates)
    if not shapes:
        raise ArtifactMismatch(
            f"{tag}: on these kernels no batch shape gives a golden row identical outputs "
            f"wherever it lands (recorded: {recorded})",
            details=details,
        )
    plan = ExecutionPlan(mode="padded", shapes=shapes)
    logger.warning(
        "%s: recorded execution (%s) does not hold on these kernels; serving %s",
        tag,
        recorded,
        plan.describe(),
    )
    return plan


def _matches(
    actual: npt.NDArray[np.float64], expected: npt.NDArray[np.float64], tolerance: float
) -> bool:
    if tolerance == 0.0:
        return bool(np.array_equal(actual, expected))
    return bool(np.allclose(actual, expected, rtol=0.0, atol=tolerance))


def load_verified(
    directory: Path,
    raw_metadata: Mapping[str, Any],
    *,
    name: str,
    version: str,
    golden_tolerance: float = 0.0,
) -> VerifiedModel:
    """Check digests before loading (joblib unpickles), then the schema width, the recorded
    batch execution and the golden outputs (computed under that execution).

    Golden outputs compare exactly when this process computes with the kernels that recorded
    them (same framework build, device and CPU instruction set); with other kernels, within
    `golden_tolerance`.
    """
    tag = f"{name}:{version}"
    metadata = parse_metadata(raw_metadata, tag=tag)
    verify_digests(directory, metadata, tag=tag)
    adapter = get_adapter(metadata.framework)
    model_format = adapter.model_format(metadata.model_file)
    if metadata.model_format is not None and metadata.model_format != model_format:
        raise ArtifactMismatch(
            f"{tag}: the model file {metadata.model_file} is {model_format}, "
            f"but the metadata records {metadata.model_format}"
        )
    loaded = adapter.load(directory / metadata.model_file)
    check_width(loaded, metadata.feature_schema.width)
    running = adapter.kernels()
    tolerance = 0.0 if running == metadata.kernels else golden_tolerance
    if tolerance:
        logger.warning(
            "%s: golden outputs were recorded with %s and run here with %s: compared within %g",
            tag,
            metadata.kernels or "unrecorded kernels",
            running,
            tolerance,
        )
    plan = plan_execution(loaded, metadata, tag=tag, exact=running == metadata.kernels)
    predictor = PlannedPredictor(loaded, plan)
    verify_golden(predictor, metadata, tag=tag, tolerance=tolerance)
    logger.info("%s: %s, executed %s", tag, model_format, plan.describe())
    return VerifiedModel(
        name=name, version=version, metadata=metadata, predictor=predictor, execution=plan
    )


def load_from_store(tag: str, *, golden_tolerance: float = 0.0) -> VerifiedModel:
    """Load and verify a model from the BentoML store by `name` or `name:version`
    (`golden_tolerance` as for `load_verified`: used only on other kernels)."""
    import bentoml

    model = bentoml.models.get(tag)
    return load_verified(
        Path(model.path),
        model.info.metadata,
        name=model.tag.name,
        version=str(model.tag.version),
        golden_tolerance=golden_tolerance,
    )
