"""Data for the lifecycle tests: a recipe's own training and holdout rows (as the exporter split
them), rows every given version accepts, and a version whose schema differs."""

from pathlib import Path
from typing import Any

import bentoml

from services.artifact.schema import FeatureSchema
from services.errors import ValidationFailed
from services.pipeline.validation import validate_rows
from tests.utils.factories import tiny_frame, write_model, write_schema, write_table
from training_export.cli import main as export_main
from training_export.settings import ExportSettings
from training_export.train import _split, get_recipe

Rows = list[dict[str, Any]]


def split_rows(recipe: str, seed: int) -> tuple[tuple[Rows, list[Any]], tuple[Rows, list[Any]]]:
    """(training rows, labels) and (holdout rows, labels) exactly as the export with `seed`
    split the recipe's data."""
    spec = get_recipe(recipe)
    data = spec.load_data(seed=seed, settings=ExportSettings())
    train, holdout = _split(data.frame, spec.target, seed)
    return _rows(train, spec.target), _rows(holdout, spec.target)


def _rows(frame: Any, target: str) -> tuple[Rows, list[Any]]:
    features = frame.drop(columns=[target])
    rows = [
        {name: _plain(value) for name, value in record.items()}
        for record in features.to_dict(orient="records")
    ]
    return rows, [_plain(label) for label in frame[target]]


def _plain(value: Any) -> Any:
    """A JSON-native Python scalar (numpy ints and floats as int and float)."""
    return value.item() if hasattr(value, "item") else value


def accepted_by_all(rows: Rows, tags: list[str]) -> list[int]:
    """Indexes of the rows every version in `tags` accepts (SERVING_RANGE_POLICY=reject)."""
    schemas = [
        FeatureSchema.model_validate(bentoml.models.get(tag).info.metadata["feature_schema"])
        for tag in tags
    ]
    kept = []
    for index, row in enumerate(rows):
        try:
            for schema in schemas:
                validate_rows([row], schema, policy="reject", max_rows=1)
        except ValidationFailed:
            continue
        kept.append(index)
    return kept


def export_incompatible_version(directory: Path, *, name: str, version: str) -> str:
    """Export a small scikit-learn model under `name` whose features and classes differ from the
    reference recipes'; return its tag."""
    args = [
        "export",
        "--framework",
        "sklearn",
        "--name",
        name,
        "--version",
        version,
        "--model",
        str(write_model("sklearn", directory / "model")),
        "--schema",
        str(write_schema(directory / "schema.json")),
        "--eval-data",
        str(write_table(directory / "eval.parquet", tiny_frame(rows=40, seed=7))),
    ]
    if export_main(args) != 0:
        raise RuntimeError(f"could not export {name}:{version}")
    return f"{name}:{version}"
