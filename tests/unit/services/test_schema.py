import math

import numpy as np
import pytest
from pydantic import ValidationError

from services.artifact.schema import FeatureSchema, FeatureSpec, OutputSchema
from tests.utils.factories import tiny_schema


def test_category_feature_needs_unique_categories() -> None:
    with pytest.raises(ValidationError, match="unique categories"):
        FeatureSpec(name="color", dtype="category", categories=("a", "a"))


def test_numeric_feature_takes_no_categories() -> None:
    with pytest.raises(ValidationError, match="only category features"):
        FeatureSpec(name="size", dtype="float", categories=("a",))


def test_range_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="minimum is greater"):
        FeatureSpec(name="size", dtype="float", minimum=2.0, maximum=1.0)


def test_impute_policy_needs_a_finite_value() -> None:
    with pytest.raises(ValidationError, match="impute_value"):
        FeatureSpec(name="size", dtype="float", missing="impute")


def test_feature_names_must_be_identifiers() -> None:
    with pytest.raises(ValidationError):
        FeatureSpec(name="mean radius", dtype="float")


def test_schema_refuses_duplicate_names() -> None:
    spec = FeatureSpec(name="size", dtype="float")
    with pytest.raises(ValidationError, match="unique"):
        FeatureSchema(features=(spec, spec))


def test_output_schema_needs_two_distinct_classes() -> None:
    with pytest.raises(ValidationError):
        OutputSchema(target="label", classes=(1, 1))


def test_encode_rows_maps_each_type_to_its_number() -> None:
    rows = [{"size": 1.5, "count": 3, "flag": True, "color": "blue"}]

    matrix = tiny_schema().encode_rows(rows)

    assert matrix.dtype == np.float32
    assert matrix.tolist() == [[1.5, 3.0, 1.0, 2.0]]


def test_encode_imputes_missing_values_by_policy() -> None:
    schema = FeatureSchema(
        features=(FeatureSpec(name="age", dtype="int", missing="impute", impute_value=40.0),)
    )

    assert schema.encode_rows([{"age": None}, {}]).tolist() == [[40.0], [40.0]]


def test_encode_leaves_rejected_missing_values_as_nan() -> None:
    schema = FeatureSchema(features=(FeatureSpec(name="age", dtype="int"),))

    assert math.isnan(schema.encode_rows([{"age": None}])[0, 0])


def test_encode_columns_and_rows_agree() -> None:
    schema = tiny_schema()
    rows = [
        {"size": 2.25, "count": 1, "flag": False, "color": "red"},
        {"size": -1.0, "count": 7, "flag": True, "color": "green"},
    ]
    columns = {name: np.array([row[name] for row in rows], dtype=object) for name in schema.names}

    assert np.array_equal(schema.encode_rows(rows), schema.encode_columns(columns))
