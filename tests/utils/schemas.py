"""A small feature schema with ranges and an imputable feature, and rows that fit it."""

from typing import Any

from services.artifact.schema import FeatureSchema, FeatureSpec

COLORS = ("red", "green", "blue")


def ranged_schema() -> FeatureSchema:
    """One feature of each dtype; `size` and `count` have training ranges, `age` is imputed."""
    return FeatureSchema(
        features=(
            FeatureSpec(name="size", dtype="float", minimum=0.0, maximum=100.0),
            FeatureSpec(name="count", dtype="int", minimum=0.0, maximum=10.0),
            FeatureSpec(name="flag", dtype="bool"),
            FeatureSpec(name="color", dtype="category", categories=COLORS),
            FeatureSpec(name="age", dtype="int", missing="impute", impute_value=40.0),
        )
    )


def valid_row(**overrides: Any) -> dict[str, Any]:
    """A row of `ranged_schema` inside every range, with `overrides` applied."""
    row: dict[str, Any] = {"size": 12.5, "count": 3, "flag": True, "color": "green", "age": 31}
    row.update(overrides)
    return row
