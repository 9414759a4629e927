"""Export a model trained elsewhere: its file, its feature schema and held-out data."""

import tempfile
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from services.artifact.adapters import get_adapter
from services.artifact.digests import DATA_DIGEST_METHOD, DataDigest
from services.artifact.metadata import DataProvenance
from services.artifact.schema import FeatureSchema, FeatureSpec
from services.errors import AppError
from training_export import progress
from training_export.errors import ExportError
from training_export.export import ExportRequest, ensure_new_tag, export_model
from training_export.schema_inference import RangeObserver, SchemaFile, read_schema_file
from training_export.settings import ExportSettings
from training_export.tables import FrameSource, open_table
from training_export.validation import FrameChecker, check_columns


@dataclass(frozen=True)
class OwnModel:
    """The command-line arguments of `export`."""

    framework: str
    model: Path
    schema: Path
    eval_data: Path
    name: str
    version: str | None = None
    train_data: Path | None = None
    seed: int | None = None


def export_own_model(own: OwnModel, settings: ExportSettings) -> str:
    """Validate everything, then export; return the stored tag."""
    try:
        adapter = get_adapter(own.framework)
        artifact_name = adapter.artifact_name(own.model)
    except AppError as exc:
        raise ExportError(exc.message) from None
    if not own.model.is_file():
        raise ExportError(f"{own.model}: no such file")
    if own.version is not None:
        ensure_new_tag(own.name, own.version)
    schema_file = read_schema_file(own.schema)
    evaluation = open_table(own.eval_data, batch_rows=settings.batch_rows)
    features = list(schema_file.features)
    check_columns(
        evaluation.columns, _schema(features), schema_file.target, what=str(own.eval_data)
    )
    training = DataProvenance(sha256=None, digest_method=DATA_DIGEST_METHOD, rows=None)
    if own.train_data is not None:
        features, training = _scan_training(own.train_data, schema_file, settings)
    with tempfile.TemporaryDirectory(prefix="export-staging-") as staging:
        try:
            artifact_name = adapter.adopt(own.model, Path(staging))
        except AppError as exc:
            raise ExportError(exc.message) from None
        return export_model(
            ExportRequest(
                name=own.name,
                version=own.version,
                framework=own.framework,
                staging_dir=Path(staging),
                model_file=artifact_name,
                features=features,
                target=schema_file.target,
                classes=schema_file.classes,
                eval_source=evaluation.batches,
                evaluation=DataProvenance(
                    sha256=None,
                    digest_method=DATA_DIGEST_METHOD,
                    rows=None,
                    source=own.eval_data.name,
                ),
                training=training,
                ranges_from_eval=own.train_data is None,
                seed=own.seed,
                golden_count=settings.golden_count,
                train_source=_batches(own.train_data, settings),
            )
        )


def _scan_training(
    path: Path, schema_file: SchemaFile, settings: ExportSettings
) -> tuple[list[FeatureSpec], DataProvenance]:
    """Validate the training data, observe its ranges and digest its content."""
    table = open_table(path, batch_rows=settings.batch_rows)
    schema = _schema(schema_file.features)
    check_columns(table.columns, schema, schema_file.target, what=str(path))
    checker = FrameChecker(
        schema=schema, target=schema_file.target, classes=schema_file.classes, what="training data"
    )
    observer = RangeObserver(schema.features)
    digest = DataDigest([*schema.names, schema_file.target])
    with progress.step(f"scanning training data {path.name}"):
        for frame in table.batches():
            checker.check(frame)
            observer.update(frame)
            digest.update({name: frame[name].to_numpy() for name in frame.columns})
        checker.finish()
    try:
        completed = observer.apply(schema.features)
    except ValidationError as exc:
        raise ExportError(
            f"{path}: the schema's ranges do not fit the data ({exc.errors()[0]['msg']})"
        ) from None
    provenance = DataProvenance(
        sha256=digest.hexdigest(),
        digest_method=DATA_DIGEST_METHOD,
        rows=checker.rows,
        source=path.name,
    )
    return list(completed.features), provenance


def _batches(path: Path | None, settings: ExportSettings) -> FrameSource | None:
    """The (already validated) training data's batches, for its reference distribution."""
    return None if path is None else open_table(path, batch_rows=settings.batch_rows).batches


def _schema(features: list[FeatureSpec]) -> FeatureSchema:
    return FeatureSchema(features=tuple(features))
