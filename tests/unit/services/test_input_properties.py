"""Property tests: for any input at all, validation and query parsing either refuse it with
their own error or hand on something every later stage (encoding, the database) can take."""

import math
from datetime import UTC
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.errors import ValidationFailed
from services.gateway.fields import storable
from services.gateway.query import MAX_LIMIT, MAX_PAGE, PredictionListQuery
from services.pipeline.validation import validate_rows
from tests.utils.schemas import ranged_schema, valid_row

SCHEMA = ranged_schema()
PROPERTIES = settings(max_examples=300, deadline=None, derandomize=True, database=None)

# Everything JSON can carry, biased to the edges: huge integers, non-finite and float32-
# overflowing floats, NUL characters and lone surrogates in strings.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=3e38, max_value=1.7e308),
    st.text(),
    st.sampled_from(["red", "green", "blue", "\x00", "\ud800", "green\x00"]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
ROWS = st.one_of(
    st.builds(
        lambda overrides: valid_row(**overrides),
        st.dictionaries(st.sampled_from([*SCHEMA.names, "extra", "\x00"]), JSON, max_size=3),
    ),
    JSON,
)


@PROPERTIES
@given(inputs=st.lists(ROWS, min_size=0, max_size=4), policy=st.sampled_from(["reject", "flag"]))
def test_accepted_rows_always_encode_to_a_finite_float32_matrix(
    inputs: list[Any], policy: Any
) -> None:
    try:
        validated = validate_rows(inputs, SCHEMA, policy=policy, max_rows=3)
    except ValidationFailed as exc:
        refused: ValidationFailed | None = exc
    else:
        refused = None
    if refused is not None:
        assert refused.status_code == 422
        assert refused.details["errors"]
        return
    matrix = SCHEMA.encode_rows(validated.rows)
    assert matrix.dtype == np.float32
    assert matrix.shape == (len(inputs), SCHEMA.width)
    assert np.isfinite(matrix).all()


QUERY_KEYS = [
    "page",
    "limit",
    "sort",
    "filter[model]",
    "filter[model_version]",
    "filter[labelled]",
    "filter[created_after]",
    "filter[created_before]",
    "filter[principal]",
]
QUERY_VALUES = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat()),
    st.sampled_from(["\u00b2", "\u0661\u0660", "9" * 5000, "0001-01-01T00:00:00+14:00"]),
)


@PROPERTIES
@given(params=st.dictionaries(st.sampled_from(QUERY_KEYS), QUERY_VALUES))
def test_parsed_query_parameters_are_bounded_storable_and_in_utc(params: dict[str, str]) -> None:
    try:
        parsed = PredictionListQuery.model_validate(params)
    except ValidationError as exc:
        errors = exc.errors()
    else:
        errors = []
    if errors:
        # A refusal always names one of the parameters (the route turns it into a 400).
        assert all(str(error["loc"][0]) in QUERY_KEYS for error in errors)
        return
    query = parsed.query()
    assert 1 <= parsed.limit <= MAX_LIMIT
    assert 0 <= parsed.offset <= (MAX_PAGE - 1) * MAX_LIMIT
    for text in (query.model, query.model_version, query.principal):
        if text is not None:
            assert storable(text) == text
    for moment in (query.created_after, query.created_before):
        if moment is not None:
            assert moment.tzinfo is not None
            assert moment.utcoffset() == UTC.utcoffset(None)


@PROPERTIES
@given(text=st.text())
def test_storable_text_is_exactly_what_utf8_and_postgresql_take(text: str) -> None:
    takes = "\x00" not in text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        takes = False
    if takes:
        assert storable(text) == text
    else:
        with pytest.raises(ValueError, match=r"NUL|surrogate"):
            storable(text)


def test_the_float32_bound_is_the_largest_value_that_stays_finite() -> None:
    from services.pipeline.validation import FLOAT32_MAX

    assert math.isfinite(float(np.float32(FLOAT32_MAX)))
    with np.errstate(over="ignore"):
        assert not math.isfinite(float(np.float32(FLOAT32_MAX * 1.0000001)))
