"""Feature and output schemas, and the one encoding from feature values to a model input."""

import math
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Annotated, Literal, Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

FeatureDType = Literal["float", "int", "bool", "category"]
MissingPolicy = Literal["reject", "impute"]
FeatureName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
]
ClassLabel = int | str
JsonScalar = float | int | str | bool | None


class FeatureSpec(BaseModel):
    """One input feature: its type, its allowed values and what to do when it is missing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: FeatureName
    dtype: FeatureDType
    categories: tuple[str, ...] | None = Field(
        default=None, description="Allowed values of a category feature, in encoding order."
    )
    minimum: float | None = Field(default=None, description="Smallest value seen in training.")
    maximum: float | None = Field(default=None, description="Largest value seen in training.")
    missing: MissingPolicy = "reject"
    impute_value: float | None = Field(
        default=None, description="Encoded value used for a missing value when missing=impute."
    )

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        if self.dtype == "category":
            if not self.categories or len(set(self.categories)) != len(self.categories):
                raise ValueError(f"{self.name}: a category feature needs unique categories")
        elif self.categories is not None:
            raise ValueError(f"{self.name}: only category features take categories")
        if self.dtype in ("bool", "category") and (
            self.minimum is not None or self.maximum is not None
        ):
            raise ValueError(f"{self.name}: {self.dtype} features have no numeric range")
        if (
            self.minimum is not None
            and self.maximum is not None
            and not self.minimum <= self.maximum
        ):
            raise ValueError(f"{self.name}: minimum is greater than maximum")
        if self.missing == "impute" and (
            self.impute_value is None or not math.isfinite(self.impute_value)
        ):
            raise ValueError(f"{self.name}: missing=impute needs a finite impute_value")
        return self


class FeatureSchema(BaseModel):
    """The ordered features a model takes; column i of the input matrix is features[i]."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    features: tuple[FeatureSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = self.names
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        return self

    @property
    def names(self) -> list[str]:
        return [feature.name for feature in self.features]

    @cached_property
    def name_set(self) -> frozenset[str]:
        """The feature names for membership tests, computed once per schema."""
        return frozenset(self.names)

    @property
    def width(self) -> int:
        return len(self.features)

    def encode_columns(
        self, columns: Mapping[str, Sequence[JsonScalar] | npt.NDArray[np.generic]]
    ) -> npt.NDArray[np.float32]:
        """Encode validated columns into the float32 matrix every framework adapter takes."""
        encoded = [_encode_column(spec, columns[spec.name]) for spec in self.features]
        return np.ascontiguousarray(np.stack(encoded, axis=1), dtype=np.float32)

    def encode_rows(self, rows: Sequence[Mapping[str, JsonScalar]]) -> npt.NDArray[np.float32]:
        """Encode validated rows (feature name -> value) into the model's input matrix."""
        columns = {name: [row.get(name) for row in rows] for name in self.names}
        return self.encode_columns(columns)


class OutputSchema(BaseModel):
    """What a model returns: class probabilities, in the order of `classes`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: Literal["classification"] = "classification"
    target: str = Field(min_length=1, description="Name of the label column in training data.")
    classes: tuple[ClassLabel, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _unique_classes(self) -> Self:
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("classes must be unique")
        return self


def _encode_column(
    spec: FeatureSpec, values: Sequence[JsonScalar] | npt.NDArray[np.generic]
) -> npt.NDArray[np.float64]:
    if spec.dtype == "category":
        assert spec.categories is not None
        index = {category: float(i) for i, category in enumerate(spec.categories)}
        column = np.array(
            [math.nan if _is_missing(value) else index[str(value)] for value in values],
            dtype=np.float64,
        )
    elif isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        column = values.astype(np.float64)
    else:
        column = np.array(
            [math.nan if _is_missing(value) else float(value) for value in values],  # type: ignore[arg-type]
            dtype=np.float64,
        )
    if spec.missing == "impute":
        assert spec.impute_value is not None
        column[np.isnan(column)] = spec.impute_value
    return column


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
