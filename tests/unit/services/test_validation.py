"""Client rows are checked against a model's feature schema before any inference."""

import math
from typing import Any

import pytest

from services.errors import ValidationFailed
from services.pipeline.validation import MAX_DETAILS, RangePolicy, ValidatedRows, validate_rows
from tests.utils.schemas import ranged_schema, valid_row


def _validate(
    inputs: list[Any], *, policy: RangePolicy = "reject", max_rows: int = 10
) -> ValidatedRows:
    return validate_rows(inputs, ranged_schema(), policy=policy, max_rows=max_rows)


def _problems(inputs: list[Any], **kwargs: Any) -> list[tuple[int | None, str | None, str]]:
    """(row, field, code) of every detail the failed validation reported, in order."""
    with pytest.raises(ValidationFailed) as caught:
        _validate(inputs, **kwargs)
    assert caught.value.status_code == 422
    return [
        (detail.get("row"), detail.get("field"), detail["code"])
        for detail in caught.value.details["errors"]
    ]


def test_valid_rows_pass_unchanged_without_flags() -> None:
    rows = [valid_row(), valid_row(size=99.0, color="blue")]

    validated = _validate(rows)

    assert validated.rows == rows
    assert validated.out_of_range == [[], []]


def test_unknown_feature_is_reported_by_row_and_name() -> None:
    assert _problems([valid_row(), valid_row(weight=3.0)]) == [(1, "weight", "unknown_feature")]


def test_missing_feature_is_required() -> None:
    row = valid_row()
    del row["count"]

    with pytest.raises(ValidationFailed) as caught:
        _validate([row])

    assert caught.value.details["errors"] == [
        {"code": "missing", "message": "required", "row": 0, "field": "count"}
    ]


def test_null_is_refused_where_the_policy_is_reject() -> None:
    with pytest.raises(ValidationFailed) as caught:
        _validate([valid_row(size=None)])

    assert caught.value.details["errors"] == [
        {
            "code": "missing",
            "message": "null is not allowed for this feature",
            "row": 0,
            "field": "size",
        }
    ]


def test_null_is_accepted_where_the_policy_is_impute() -> None:
    validated = _validate([valid_row(age=None)])

    assert validated.rows[0]["age"] is None
    assert ranged_schema().encode_rows(validated.rows)[0, 4] == 40.0


def test_absent_imputable_feature_is_accepted() -> None:
    row = valid_row()
    del row["age"]

    assert _validate([row]).rows == [row]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("size", "12.5", id="string-for-float"),
        pytest.param("size", True, id="bool-for-float"),
        pytest.param("count", 2.5, id="fraction-for-int"),
        pytest.param("color", 1, id="number-for-category"),
        pytest.param("flag", 1, id="number-for-bool"),
        pytest.param("size", [1.0], id="list-for-float"),
    ],
)
def test_wrong_type_is_refused(field: str, value: Any) -> None:
    assert _problems([valid_row(**{field: value})]) == [(0, field, "wrong_type")]


def test_integral_float_is_accepted_for_an_int_feature() -> None:
    assert _validate([valid_row(count=3.0)]).out_of_range == [[]]


def test_unknown_category_names_the_allowed_ones() -> None:
    with pytest.raises(ValidationFailed) as caught:
        _validate([valid_row(color="purple")])

    (detail,) = caught.value.details["errors"]
    assert (detail["row"], detail["field"], detail["code"]) == (0, "color", "unknown_category")
    assert "red" in detail["message"]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_number_is_refused(value: float) -> None:
    assert _problems([valid_row(size=value)]) == [(0, "size", "not_finite")]


def test_out_of_range_value_is_refused_under_reject() -> None:
    with pytest.raises(ValidationFailed) as caught:
        _validate([valid_row(), valid_row(size=100.5)], policy="reject")

    assert caught.value.details["errors"] == [
        {
            "code": "out_of_range",
            "message": "outside the training range [0.0, 100.0]",
            "row": 1,
            "field": "size",
        }
    ]


def test_out_of_range_value_is_accepted_and_flagged_under_flag() -> None:
    rows = [valid_row(), valid_row(size=-1.0, count=11)]

    validated = _validate(rows, policy="flag")

    assert validated.rows == rows
    assert validated.out_of_range == [[], ["size", "count"]]


def test_range_bounds_are_inclusive() -> None:
    validated = _validate([valid_row(size=0.0, count=10), valid_row(size=100.0, count=0)])

    assert validated.out_of_range == [[], []]


def test_too_many_rows_is_refused_without_row_details() -> None:
    with pytest.raises(ValidationFailed) as caught:
        _validate([valid_row()] * 3, max_rows=2)

    assert caught.value.details["errors"] == [
        {"code": "too_many_rows", "message": "3 rows; at most 2 per request"}
    ]


def test_max_rows_itself_is_accepted() -> None:
    assert len(_validate([valid_row()] * 2, max_rows=2).rows) == 2


def test_empty_inputs_are_refused() -> None:
    assert _problems([]) == [(None, None, "empty")]


@pytest.mark.parametrize("row", [[1.0, 2.0], "size=1", 3, None], ids=["list", "str", "int", "null"])
def test_row_that_is_not_an_object_is_refused(row: Any) -> None:
    assert _problems([valid_row(), row]) == [(1, None, "not_an_object")]


def test_every_offending_row_and_field_gets_one_detail() -> None:
    rows = [
        valid_row(size="big", color="purple"),
        valid_row(),
        valid_row(count=2.5, extra=1),
        "not a row",
    ]

    problems = _problems(rows)

    assert sorted(problems, key=repr) == sorted(
        [
            (0, "size", "wrong_type"),
            (0, "color", "unknown_category"),
            (2, "extra", "unknown_feature"),
            (2, "count", "wrong_type"),
            (3, None, "not_an_object"),
        ],
        key=repr,
    )


def test_details_are_capped_and_marked_truncated() -> None:
    rows = [{"size": "x", "count": "x", "flag": "x", "color": 0}] * 30

    with pytest.raises(ValidationFailed) as caught:
        _validate(rows, max_rows=30)

    assert caught.value.message == "120 problem(s) in inputs"
    assert len(caught.value.details["errors"]) == MAX_DETAILS
    assert caught.value.details["truncated"] is True
