"""Strict validation of client rows against a model's feature schema, before any inference.

Every problem is reported, one detail per offending row and field, so a client can fix a whole
request at once.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from services.artifact.schema import FeatureSchema, FeatureSpec, JsonScalar
from services.errors import ValidationFailed

RangePolicy = Literal["reject", "flag"]
MAX_DETAILS = 100
# Every model takes a float32 matrix: a number beyond this encodes as infinity. Compared with
# Python's exact int/float comparison, so an integer of any length is refused, never converted.
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class ValidatedRows:
    """Rows that passed, and per row the features accepted outside their training range."""

    rows: list[dict[str, JsonScalar]]
    out_of_range: list[list[str]] = field(default_factory=list)


def validate_rows(
    inputs: Sequence[Any], schema: FeatureSchema, *, policy: RangePolicy, max_rows: int
) -> ValidatedRows:
    """The rows as the model may see them, or ValidationFailed listing every problem."""
    if not inputs:
        _fail([_detail(None, None, "empty", "inputs needs at least one row")])
    if len(inputs) > max_rows:
        _fail(
            [
                _detail(
                    None,
                    None,
                    "too_many_rows",
                    f"{len(inputs)} rows; at most {max_rows} per request",
                )
            ]
        )
    problems: list[dict[str, Any]] = []
    flags: list[list[str]] = []
    for index, row in enumerate(inputs):
        row_flags: list[str] = []
        if not isinstance(row, dict):
            problems.append(_detail(index, None, "not_an_object", "each row must be an object"))
        else:
            problems += _check_row(index, row, schema, policy, row_flags)
        flags.append(row_flags)
    if problems:
        _fail(problems)
    return ValidatedRows(rows=list(inputs), out_of_range=flags)


def _check_row(
    index: int, row: dict[str, Any], schema: FeatureSchema, policy: RangePolicy, flags: list[str]
) -> list[dict[str, Any]]:
    problems = [
        _detail(index, name, "unknown_feature", "not a feature of this model")
        for name in row
        if name not in schema.name_set
    ]
    for spec in schema.features:
        problem = _check_value(spec, row.get(spec.name), spec.name in row)
        if problem is not None:
            problems.append(_detail(index, spec.name, *problem))
        elif _out_of_range(spec, row.get(spec.name)):
            if policy == "reject":
                problems.append(_detail(index, spec.name, "out_of_range", _range_text(spec)))
            else:
                flags.append(spec.name)
    return problems


def _check_value(spec: FeatureSpec, value: Any, present: bool) -> tuple[str, str] | None:
    if value is None:
        if spec.missing == "impute":
            return None
        return ("missing", "required" if not present else "null is not allowed for this feature")
    if spec.dtype == "category":
        assert spec.categories is not None
        if not isinstance(value, str):
            return ("wrong_type", "expected a string category")
        if value not in spec.categories:
            return ("unknown_category", f"expected one of {list(spec.categories)}")
        return None
    if spec.dtype == "bool":
        return None if isinstance(value, bool) else ("wrong_type", "expected true or false")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ("wrong_type", f"expected a number ({spec.dtype})")
    if isinstance(value, float) and not math.isfinite(value):
        return ("not_finite", "NaN and infinity are not allowed")
    if not -FLOAT32_MAX <= value <= FLOAT32_MAX:
        return ("not_representable", f"outside what a model input holds (|x| <= {FLOAT32_MAX:g})")
    if spec.dtype == "int" and isinstance(value, float) and not value.is_integer():
        return ("wrong_type", "expected an integer")
    return None


def _out_of_range(spec: FeatureSpec, value: Any) -> bool:
    if value is None or spec.dtype not in ("int", "float"):
        return False
    low = spec.minimum if spec.minimum is not None else -math.inf
    high = spec.maximum if spec.maximum is not None else math.inf
    return not low <= float(value) <= high


def _range_text(spec: FeatureSpec) -> str:
    return f"outside the training range [{spec.minimum}, {spec.maximum}]"


def _detail(row: int | None, name: str | None, code: str, message: str) -> dict[str, Any]:
    detail: dict[str, Any] = {"code": code, "message": message}
    if row is not None:
        detail["row"] = row
    if name is not None:
        detail["field"] = name
    return detail


def _fail(problems: list[dict[str, Any]]) -> None:
    raise ValidationFailed(
        f"{len(problems)} problem(s) in inputs",
        details={"errors": problems[:MAX_DETAILS], "truncated": len(problems) > MAX_DETAILS},
    )
