"""Build feature schemas: inferred from a training frame, or read from a user's schema file."""

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.artifact.schema import ClassLabel, FeatureSchema, FeatureSpec
from training_export.errors import ExportError


class SchemaFile(BaseModel):
    """The schema a user brings with their own model (see README, "Export your own model")."""

    model_config = ConfigDict(extra="forbid")

    target: str = Field(min_length=1, description="Label column of the evaluation data.")
    classes: list[ClassLabel] | None = Field(
        default=None, description="Labels in the model's output order; default: sorted labels."
    )
    features: list[FeatureSpec] = Field(min_length=1)


def read_schema_file(path: Path) -> SchemaFile:
    """Parse and check a schema file; ExportError says which field is wrong."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path}: not valid JSON ({exc})") from None
    try:
        parsed = SchemaFile.model_validate(raw)
        FeatureSchema(features=tuple(parsed.features))
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc'])) or 'schema'}: {e['msg']}" for e in exc.errors()]
        raise ExportError(f"{path}: not a valid feature schema", problems=problems) from None
    return parsed


def infer_feature(name: str, column: pd.Series) -> FeatureSpec:
    """A feature spec from a training column: its type and the range observed in it."""
    kind = column.dtype.kind
    if kind == "b":
        return FeatureSpec(name=name, dtype="bool")
    if kind in "iuf":
        dtype = "int" if kind in "iu" else "float"
        values = column.to_numpy(dtype=np.float64)
        return FeatureSpec(
            name=name,
            dtype=dtype,
            minimum=float(np.nanmin(values)),
            maximum=float(np.nanmax(values)),
        )
    categories = tuple(sorted({str(value) for value in column.dropna()}))
    return FeatureSpec(name=name, dtype="category", categories=categories)


def infer_schema(frame: pd.DataFrame, *, target: str) -> FeatureSchema:
    """The ordered schema of every column except `target`."""
    features = [infer_feature(str(name), frame[name]) for name in frame.columns if name != target]
    return FeatureSchema(features=tuple(features))


class RangeObserver:
    """Tracks the range of each numeric feature across record batches."""

    def __init__(self, specs: Sequence[FeatureSpec]) -> None:
        self._numeric = [spec.name for spec in specs if spec.dtype in ("int", "float")]
        self._low = dict.fromkeys(self._numeric, math.inf)
        self._high = dict.fromkeys(self._numeric, -math.inf)

    def update(self, frame: pd.DataFrame) -> None:
        """Widen the ranges with one batch."""
        for name in self._numeric:
            values = frame[name].to_numpy(dtype=np.float64)
            if np.isnan(values).all():
                continue
            self._low[name] = min(self._low[name], float(np.nanmin(values)))
            self._high[name] = max(self._high[name], float(np.nanmax(values)))

    def apply(self, specs: Sequence[FeatureSpec]) -> FeatureSchema:
        """The schema with observed ranges where the user's schema gave none."""
        completed = []
        for spec in specs:
            if spec.name in self._numeric and math.isfinite(self._low[spec.name]):
                low = spec.minimum if spec.minimum is not None else self._low[spec.name]
                high = spec.maximum if spec.maximum is not None else self._high[spec.name]
                spec = FeatureSpec.model_validate(
                    {**spec.model_dump(), "minimum": low, "maximum": high}
                )
            completed.append(spec)
        return FeatureSchema(features=tuple(completed))
