"""A model's feature schema as protocol tensors, and back: request tensors -> the rows the
prediction service validates; its result -> output tensors.

Two input layouts, as the protocol allows:
- one tensor per feature, named by the feature, shape [N] or [N, 1]: BYTES for a category,
  BOOL for a boolean, any number type for an int or float feature;
- one tensor named `input`, shape [N, n_features], one number type, the features in schema
  order: a category as its index in the schema's categories, a boolean as 0 or 1.
Values keep the meaning JSON rows have, so validation, ranges, the cache key and the log see
what the client meant: an FP32/FP16 value stands for the shortest decimal that rounds to it
(3.2, not 3.2000000476837), an integral float for an int feature is that int, NaN is missing.
"""

from collections.abc import Sequence
from typing import Any, get_args

import numpy as np
import numpy.typing as npt

from services.artifact.schema import ClassLabel, FeatureSchema, FeatureSpec
from services.errors import ValidationFailed
from services.gateway.oip.schemas import Datatype
from services.gateway.oip.tensors import Tensor
from services.pipeline.prediction_service import PredictionResult

MATRIX_INPUT = "input"
# Every datatype the protocol defines but BOOL and BYTES: the ones a number may come in.
NUMBER_TYPES = frozenset(get_args(Datatype)) - {"BOOL", "BYTES"}
FEATURE_DATATYPES = {"float": "FP64", "int": "INT64", "bool": "BOOL", "category": "BYTES"}
ACCEPTED = {
    "float": NUMBER_TYPES,
    "int": NUMBER_TYPES,
    "bool": frozenset({"BOOL"}),
    "category": frozenset({"BYTES"}),
}
OUTPUTS = ("label", "probabilities", "prediction_id", "out_of_range")
MAX_DETAILS = 100


def input_metadata(schema: FeatureSchema) -> list[dict[str, Any]]:
    """One input tensor per feature, in schema order."""
    return [
        {"name": spec.name, "datatype": FEATURE_DATATYPES[spec.dtype], "shape": [-1]}
        for spec in schema.features
    ]


def output_metadata(classes: Sequence[ClassLabel]) -> list[dict[str, Any]]:
    """The outputs every classifier returns."""
    return [
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(classes)]},
        {"name": "prediction_id", "datatype": "BYTES", "shape": [-1]},
        {"name": "out_of_range", "datatype": "BYTES", "shape": [-1]},
    ]


def layout_parameters(schema: FeatureSchema, classes: Sequence[ClassLabel]) -> dict[str, Any]:
    """How else inputs may come (the matrix layout), and what the probability columns are."""
    parameters: dict[str, Any] = {"classes": ",".join(str(label) for label in classes)}
    if MATRIX_INPUT not in schema.name_set:
        parameters["matrix_input"] = MATRIX_INPUT
        parameters["matrix_shape"] = f"[-1, {schema.width}]"
    return parameters


def rows_from_tensors(tensors: Sequence[Tensor], schema: FeatureSchema) -> list[dict[str, Any]]:
    """The rows (feature name -> value) the tensors hold; 422 when they do not fit the schema."""
    matrix = (
        len(tensors) == 1
        and tensors[0].name == MATRIX_INPUT
        and MATRIX_INPUT not in schema.name_set
    )
    columns = _matrix_columns(tensors[0], schema) if matrix else _feature_columns(tensors, schema)
    problems: list[dict[str, Any]] = []
    values = {}
    for spec in schema.features:
        if spec.name in columns:  # an absent feature is missing from every row
            datatype, column = columns[spec.name]
            values[spec.name] = _values(spec, column, datatype, problems)
    if problems:
        _invalid(problems)
    count = len(next(iter(values.values()))) if values else 0
    return [{name: column[i] for name, column in values.items()} for i in range(count)]


def output_tensors(result: PredictionResult, classes: Sequence[ClassLabel]) -> dict[str, Tensor]:
    """The result as the outputs `output_metadata` declares."""
    rows = result.rows
    count = len(rows)
    probabilities = [[row.outputs["probabilities"][str(c)] for c in classes] for row in rows]
    return {
        "label": _text("label", [str(row.outputs["label"]) for row in rows]),
        "probabilities": Tensor(
            "probabilities",
            "FP64",
            (count, len(classes)),
            np.array(probabilities, dtype=np.float64).reshape(-1),
        ),
        "prediction_id": _text("prediction_id", [str(row.id) for row in rows]),
        "out_of_range": _text(
            "out_of_range", [",".join(row.outputs.get("out_of_range", [])) for row in rows]
        ),
    }


def _text(name: str, values: list[str]) -> Tensor:
    return Tensor(name, "BYTES", (len(values),), np.array(values, dtype=object))


Columns = dict[str, tuple[str, npt.NDArray[Any]]]


def _matrix_columns(tensor: Tensor, schema: FeatureSchema) -> Columns:
    if tensor.datatype not in NUMBER_TYPES:
        _invalid([_problem(MATRIX_INPUT, "wrong_datatype", "the matrix input must be numeric")])
    if len(tensor.shape) != 2 or tensor.shape[1] != schema.width:
        _invalid(
            [
                _problem(
                    MATRIX_INPUT,
                    "wrong_shape",
                    f"expected shape [N, {schema.width}], got {list(tensor.shape)}",
                )
            ]
        )
    matrix = tensor.values.reshape(tensor.shape)
    return {
        spec.name: (tensor.datatype, matrix[:, index]) for index, spec in enumerate(schema.features)
    }


def _feature_columns(tensors: Sequence[Tensor], schema: FeatureSchema) -> Columns:
    specs = {spec.name: spec for spec in schema.features}
    problems = []
    for tensor in tensors:
        spec = specs.get(tensor.name)
        if spec is None:
            problems.append(_problem(tensor.name, "unknown_feature", _unknown_text(schema)))
        elif len(tensor.shape) not in (1, 2) or tensor.shape[1:] not in ((), (1,)):
            problems.append(
                _problem(tensor.name, "wrong_shape", f"expected [N] or [N, 1], got {tensor.shape}")
            )
        elif tensor.datatype not in ACCEPTED[spec.dtype]:
            problems.append(
                _problem(
                    tensor.name,
                    "wrong_datatype",
                    f"a {spec.dtype} feature takes {_accepted_text(spec)}, not {tensor.datatype}",
                )
            )
    if not problems and len({tensor.shape[0] for tensor in tensors}) > 1:
        problems.append(_problem(None, "batch_mismatch", "every input needs the same N"))
    if problems:
        _invalid(problems)
    return {tensor.name: (tensor.datatype, tensor.values) for tensor in tensors}


def _values(
    spec: FeatureSpec, column: npt.NDArray[Any], datatype: str, problems: list[dict[str, Any]]
) -> list[Any]:
    """The column as the values a JSON row would carry for this feature."""
    if datatype in ("FP16", "FP32"):
        column = column.astype(str).astype(np.float64)  # the shortest decimal for each value
    values: list[Any] = column.tolist()
    if datatype.startswith("FP"):
        values = [None if value != value else value for value in values]  # NaN is missing
    if spec.dtype == "int":
        return [_integral(value) for value in values]
    if datatype not in NUMBER_TYPES or spec.dtype == "float":
        return values
    if spec.dtype == "bool":
        return [
            _code(spec, row, value, (False, True), problems) for row, value in enumerate(values)
        ]
    assert spec.categories is not None
    return [_code(spec, row, value, spec.categories, problems) for row, value in enumerate(values)]


def _integral(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _code(
    spec: FeatureSpec,
    row: int,
    value: Any,
    choices: Sequence[Any],
    problems: list[dict[str, Any]],
) -> Any:
    """A matrix cell of a bool or category feature: its index into `choices`."""
    if value is None:
        return None
    if float(value).is_integer() and 0 <= value < len(choices):
        return choices[int(value)]
    problems.append(
        {
            "row": row,
            **_problem(
                spec.name,
                "wrong_code",
                f"expected an index 0..{len(choices) - 1} into {list(choices)}",
            ),
        }
    )
    return None


def _problem(field: str | None, code: str, message: str) -> dict[str, Any]:
    detail: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        detail["field"] = field
    return detail


def _unknown_text(schema: FeatureSchema) -> str:
    layout = "" if MATRIX_INPUT in schema.name_set else f", or one {MATRIX_INPUT!r} tensor"
    return f"not a feature of this model; send tensors named {schema.names}{layout}"


def _accepted_text(spec: FeatureSpec) -> str:
    return {"bool": "BOOL", "category": "BYTES"}.get(spec.dtype, "an FP* or (U)INT* tensor")


def _invalid(problems: list[dict[str, Any]]) -> None:
    raise ValidationFailed(
        f"{len(problems)} problem(s) in inputs",
        details={"errors": problems[:MAX_DETAILS], "truncated": len(problems) > MAX_DETAILS},
    )
