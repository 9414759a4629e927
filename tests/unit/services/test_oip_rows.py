"""Protocol tensors -> the rows a JSON client would send, in both input layouts, and the
prediction result -> output tensors."""

import uuid
from typing import Any

import numpy as np
import pytest

from services.artifact.schema import FeatureSchema, FeatureSpec
from services.catalog import ModelRef
from services.errors import ValidationFailed
from services.gateway.oip.rows import (
    input_metadata,
    layout_parameters,
    output_tensors,
    rows_from_tensors,
)
from services.gateway.oip.tensors import Tensor
from services.pipeline.prediction_service import PredictedRow, PredictionResult

SCHEMA = FeatureSchema(
    features=(
        FeatureSpec(name="amount", dtype="float", minimum=0.0, maximum=10.0),
        FeatureSpec(name="hour", dtype="int", minimum=0, maximum=23),
        FeatureSpec(name="channel", dtype="category", categories=("web", "store")),
        FeatureSpec(name="foreign", dtype="bool"),
    )
)
ROWS = [
    {"amount": 3.2, "hour": 14, "channel": "store", "foreign": False},
    {"amount": 0.5, "hour": 0, "channel": "web", "foreign": True},
]


def _tensor(name: str, datatype: str, values: list[Any], shape: tuple[int, ...]) -> Tensor:
    dtype = object if datatype == "BYTES" else None
    array = np.array(values, dtype=dtype)
    if datatype != "BYTES":
        array = array.astype({"BOOL": "?", "FP32": "<f4", "FP64": "<f8", "INT64": "<i8"}[datatype])
    return Tensor(name, datatype, shape, array)


def test_one_tensor_per_feature_gives_the_json_rows() -> None:
    tensors = [
        _tensor("amount", "FP32", [3.2, 0.5], (2,)),
        _tensor("hour", "INT64", [14, 0], (2, 1)),
        _tensor("channel", "BYTES", ["store", "web"], (2,)),
        _tensor("foreign", "BOOL", [False, True], (2,)),
    ]

    rows = rows_from_tensors(tensors, SCHEMA)

    # FP32 3.2 is 3.2000000476837158; the row carries the decimal the client meant.
    assert rows == ROWS
    assert type(rows[0]["hour"]) is int


def test_the_matrix_layout_gives_the_same_rows() -> None:
    matrix = _tensor("input", "FP64", [3.2, 14, 1, 0, 0.5, 0, 0, 1], (2, 4))

    rows = rows_from_tensors([matrix], SCHEMA)

    assert rows == ROWS
    assert type(rows[0]["hour"]) is int


def test_nan_is_a_missing_value_and_an_absent_feature_is_missing_from_every_row() -> None:
    rows = rows_from_tensors(
        [_tensor("amount", "FP64", [float("nan")], (1,)), _tensor("hour", "FP64", [2.5], (1,))],
        SCHEMA,
    )

    assert rows == [{"amount": None, "hour": 2.5}]  # validation then names both problems


@pytest.mark.parametrize(
    ("tensors", "code"),
    [
        ([_tensor("amnt", "FP64", [1.0], (1,))], "unknown_feature"),
        ([_tensor("channel", "FP64", [1.0], (1,))], "wrong_datatype"),
        ([_tensor("foreign", "INT64", [1], (1,))], "wrong_datatype"),
        ([_tensor("amount", "FP64", [1.0, 2.0], (1, 2))], "wrong_shape"),
        (
            [_tensor("amount", "FP64", [1.0], (1,)), _tensor("hour", "INT64", [1, 2], (2,))],
            "batch_mismatch",
        ),
        ([_tensor("input", "FP64", [1.0, 2.0, 0.0], (1, 3))], "wrong_shape"),
        ([_tensor("input", "BYTES", ["a", "b", "c", "d"], (1, 4))], "wrong_datatype"),
        ([_tensor("input", "FP64", [1.0, 2.0, 2.0, 0.0], (1, 4))], "wrong_code"),
        ([_tensor("input", "FP64", [1.0, 2.0, 0.5, 0.0], (1, 4))], "wrong_code"),
        ([_tensor("input", "FP64", [1.0, 2.0, 0.0, 3.0], (1, 4))], "wrong_code"),
    ],
    ids=[
        "unknown-name",
        "number-for-category",
        "int-for-bool",
        "rank-2-feature",
        "batch-sizes-differ",
        "matrix-width",
        "matrix-not-numeric",
        "category-index-out-of-range",
        "category-index-not-integral",
        "bool-not-0-or-1",
    ],
)
def test_tensors_that_do_not_fit_the_schema_are_422(tensors: list[Tensor], code: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        rows_from_tensors(tensors, SCHEMA)

    assert [problem["code"] for problem in raised.value.details["errors"]] == [code]


def test_metadata_declares_one_input_per_feature_and_the_matrix_alternative() -> None:
    assert input_metadata(SCHEMA) == [
        {"name": "amount", "datatype": "FP64", "shape": [-1]},
        {"name": "hour", "datatype": "INT64", "shape": [-1]},
        {"name": "channel", "datatype": "BYTES", "shape": [-1]},
        {"name": "foreign", "datatype": "BOOL", "shape": [-1]},
    ]
    assert layout_parameters(SCHEMA, (0, 1)) == {
        "classes": "0,1",
        "matrix_input": "input",
        "matrix_shape": "[-1, 4]",
    }


def test_outputs_hold_labels_probabilities_in_class_order_ids_and_flags() -> None:
    ids = [uuid.uuid4(), uuid.uuid4()]
    result = PredictionResult(
        model=ModelRef("m", "v1", "sklearn"),
        rows=[
            PredictedRow(
                id=ids[0],
                outputs={
                    "label": 1,
                    "score": 0.75,
                    "probabilities": {"0": 0.25, "1": 0.75},
                    "out_of_range": [],
                },
            ),
            PredictedRow(
                id=ids[1],
                outputs={
                    "label": 0,
                    "score": 0.875,
                    "probabilities": {"0": 0.875, "1": 0.125},
                    "out_of_range": ["amount", "hour"],
                },
            ),
        ],
        latency_ms=1.0,
    )

    outputs = output_tensors(result, (0, 1))

    assert outputs["label"].values.tolist() == ["1", "0"]
    assert outputs["probabilities"].shape == (2, 2)
    assert outputs["probabilities"].values.tolist() == [0.25, 0.75, 0.875, 0.125]
    assert outputs["prediction_id"].values.tolist() == [str(i) for i in ids]
    assert outputs["out_of_range"].values.tolist() == ["", "amount,hour"]
