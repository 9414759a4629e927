"""Check data sets against a feature schema, batch by batch, and collect every problem found."""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from services.artifact.schema import ClassLabel, FeatureSchema, FeatureSpec
from training_export.errors import DataValidationError

MAX_PROBLEMS = 20


def check_columns(columns: Sequence[str], schema: FeatureSchema, target: str, *, what: str) -> None:
    """The data has exactly the schema's features plus the target: no more, no less."""
    expected = [*schema.names, target]
    missing = [name for name in expected if name not in columns]
    extra = [name for name in columns if name not in expected]
    problems = [f"missing column {name!r}" for name in missing]
    problems += [f"unexpected column {name!r}" for name in extra]
    if len(set(columns)) != len(columns):
        problems.append("duplicate column names")
    if problems:
        raise DataValidationError(f"{what} does not match the feature schema", problems=problems)


@dataclass
class FrameChecker:
    """Validates batches of one data set; raises once with every problem of the first bad batch."""

    schema: FeatureSchema
    target: str
    classes: Sequence[ClassLabel] | None
    what: str
    rows: int = 0
    _problems: list[str] = field(default_factory=list)

    def check(self, frame: pd.DataFrame) -> None:
        """Validate one batch; DataValidationError lists what is wrong."""
        for spec in self.schema.features:
            self._check_feature(spec, frame[spec.name])
        self._check_target(frame[self.target])
        self.rows += len(frame)
        if self._problems:
            raise DataValidationError(
                f"{self.what} does not fit the feature schema",
                problems=self._problems[:MAX_PROBLEMS],
            )

    def finish(self) -> None:
        """After the last batch: an empty data set is an error too."""
        if self.rows == 0:
            raise DataValidationError(f"{self.what} has no rows")

    def _check_feature(self, spec: FeatureSpec, column: pd.Series) -> None:
        missing = column.isna()
        if spec.missing == "reject" and missing.any():
            self._report(spec.name, "has missing values and the schema forbids them", missing)
        present = column[~missing]
        problem = _dtype_problem(spec, present)
        if problem:
            self._problems.append(f"column {spec.name!r}: {problem}")
            return
        if spec.dtype in ("float", "int"):
            infinite = ~np.isfinite(present.to_numpy(dtype=np.float64))
            if infinite.any():
                self._report(spec.name, "has infinite values", pd.Series(infinite, present.index))

    def _check_target(self, column: pd.Series) -> None:
        missing = column.isna()
        if missing.any():
            self._report(self.target, "(the target) has missing values", missing)
        if self.classes is not None:
            allowed = {_label_key(label) for label in self.classes}
            unknown = ~column[~missing].map(_label_key).isin(allowed)
            if unknown.any():
                self._report(self.target, "has labels outside the model's classes", unknown)

    def _report(self, name: str, message: str, mask: pd.Series) -> None:
        first = mask[mask].index[0]
        self._problems.append(
            f"column {name!r} {message}: {int(mask.sum())} rows, first row {first}"
        )


def _dtype_problem(spec: FeatureSpec, values: pd.Series) -> str | None:
    kind = values.dtype.kind
    if spec.dtype == "category":
        assert spec.categories is not None
        if kind in "biuf":
            return f"expected text categories, got {values.dtype}"
        unknown = sorted({str(value) for value in values} - set(spec.categories))
        return f"unknown categories {unknown[:5]}" if unknown else None
    if kind not in "biuf":
        return f"expected {spec.dtype}, got {values.dtype}"
    numbers = values.to_numpy(dtype=np.float64)
    if spec.dtype == "float":
        return "expected float, got bool" if kind == "b" else None
    finite = numbers[np.isfinite(numbers)]
    if spec.dtype == "int" and not np.all(np.floor(finite) == finite):
        return "expected int, got fractional values"
    if spec.dtype == "bool" and not np.all(np.isin(finite, (0.0, 1.0))):
        return "expected bool (true/false or 0/1), got other values"
    return None


def _label_key(value: object) -> str:
    """Labels compare by text so that 1, 1.0 and "1" from CSV or Parquet all match class 1."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return str(value)


def label_index(values: pd.Series, classes: Sequence[ClassLabel]) -> np.ndarray:
    """Position of each label in `classes` (labels already validated)."""
    positions = {_label_key(label): i for i, label in enumerate(classes)}
    return values.map(_label_key).map(positions).to_numpy(dtype=np.int64)
