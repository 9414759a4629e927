"""A file's rows are checked and encoded by column exactly as the REST path checks and encodes
them row by row: same verdict, same first problem, same model input, same flags."""

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.batch.columns import check_columns, encode_chunk
from services.errors import ValidationFailed
from services.pipeline.validation import validate_rows
from tests.utils.schemas import COLORS, ranged_schema

SCHEMA = ranged_schema()
PROPERTIES = settings(max_examples=200, deadline=None, derandomize=True, database=None)


def mostly(valid: Any, edges: Any) -> Any:
    """Valid values 3 times in 4, so that rows whose only problem is late in the schema (or
    whose only quirk is an imputed value) come up often."""
    return st.integers(0, 3).flatmap(lambda k: edges if k == 0 else valid)


FLOATS = mostly(
    st.floats(min_value=0.0, max_value=100.0),
    st.one_of(
        st.none(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(min_value=-5.0, max_value=105.0),
        st.sampled_from([3.4e38, 3.5e38, -1e300]),
    ),
)
INTS = mostly(
    st.integers(0, 10), st.one_of(st.none(), st.integers(-3, 13), st.integers(-(2**63), 2**63 - 1))
)
INTEGRAL_FLOATS = mostly(
    st.sampled_from([3.0, 0.0, 10.0]), st.sampled_from([None, 3.5, -1.0, 11.0, math.nan, math.inf])
)
BOOLS = mostly(st.booleans(), st.none())
COLOURS = mostly(st.sampled_from(COLORS), st.sampled_from([None, "purple", ""]))
AGES = st.one_of(st.none(), INTS)


@st.composite
def tables(draw: Any) -> pa.Table:
    rows = draw(st.integers(1, 12))
    count_as_float = draw(st.booleans())
    columns: dict[str, pa.Array] = {
        "size": pa.array(draw(st.lists(FLOATS, min_size=rows, max_size=rows)), pa.float64()),
        "count": pa.array(
            draw(
                st.lists(INTEGRAL_FLOATS if count_as_float else INTS, min_size=rows, max_size=rows)
            ),
            pa.float64() if count_as_float else pa.int64(),
        ),
        "flag": pa.array(draw(st.lists(BOOLS, min_size=rows, max_size=rows)), pa.bool_()),
        "color": pa.array(draw(st.lists(COLOURS, min_size=rows, max_size=rows)), pa.string()),
    }
    if draw(st.booleans()):  # the imputed feature may be absent from the file altogether
        columns["age"] = pa.array(draw(st.lists(AGES, min_size=rows, max_size=rows)), pa.int64())
    table = pa.table(columns)
    if draw(st.booleans()):
        table = table.set_column(3, "color", table.column("color").dictionary_encode())
    return table


def rest_verdict(row: dict[str, Any], policy: Any) -> tuple[str | None, Any, list[str]]:
    try:
        validated = validate_rows([row], SCHEMA, policy=policy, max_rows=1)
    except ValidationFailed as exc:
        first = exc.details["errors"][0]
        return f"{first['code']}:{first['field']}", None, []
    return None, SCHEMA.encode_rows(validated.rows)[0], validated.out_of_range[0]


@PROPERTIES
@given(table=tables(), policy=st.sampled_from(["reject", "flag"]))
def test_columns_get_the_rest_paths_verdict_and_encoding(table: pa.Table, policy: Any) -> None:
    batch = table.combine_chunks().to_batches()[0]
    encoded = encode_chunk(batch, SCHEMA, policy=policy)

    passed = 0
    for index, row in enumerate(table.to_pylist()):
        error, encoding, flags = rest_verdict(row, policy)
        assert encoded.errors[index] == error, row
        assert bool(encoded.ok[index]) == (error is None)
        if error is None:
            np.testing.assert_array_equal(encoded.matrix[passed], encoding)
            assert encoded.flagged[index] == flags
            passed += 1
    assert len(encoded.matrix) == passed
    assert encoded.matrix.dtype == np.float32


def test_missing_and_mistyped_columns_are_named_and_extra_ones_ignored() -> None:
    columns = pa.schema(
        [
            ("size", pa.string()),
            ("flag", pa.int64()),
            ("color", pa.dictionary(pa.int32(), pa.string())),
            ("label", pa.int64()),
            ("key", pa.string()),
        ]
    )

    check = check_columns(columns, SCHEMA, id_column="key")

    assert {(p["field"], p["code"]) for p in check.problems} == {
        ("size", "wrong_type"),
        ("count", "missing_column"),
        ("flag", "wrong_type"),
    }
    assert check.ignored == ["label"]


def test_an_imputed_feature_may_be_absent_and_a_named_id_column_must_exist() -> None:
    columns = pa.schema(
        [("size", pa.float32()), ("count", pa.int8()), ("flag", pa.bool_()), ("color", pa.string())]
    )

    assert check_columns(columns, SCHEMA).problems == []
    problems = check_columns(columns, SCHEMA, id_column="key").problems
    assert problems == [
        {"field": "key", "code": "missing_column", "message": "named as the id column"}
    ]


@pytest.mark.parametrize("kind", [pa.null(), pa.large_string()])
def test_all_null_and_large_string_columns_are_accepted_where_they_can_hold_values(
    kind: pa.DataType,
) -> None:
    columns = pa.schema(
        [("size", pa.float64()), ("count", pa.int64()), ("flag", pa.bool_()), ("color", kind)]
    )

    assert check_columns(columns, SCHEMA).problems == []
