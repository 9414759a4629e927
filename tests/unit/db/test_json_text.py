"""The JSON columns' serialiser gives the standard library's JSON values, whatever it is given."""

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from db.engine import json_text

VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text() | st.integers(), children, max_size=4)
    ),
    max_leaves=20,
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


@given(VALUES)
def test_the_text_parses_to_what_the_standard_library_writes(value: Any) -> None:
    assert _same(json.loads(json_text(value)), json.loads(json.dumps(value)))


@pytest.mark.parametrize(
    "value",
    [{"big": 2**70}, {"negative": -(2**65)}, {3: "int key"}, {"feature": 1e308}],
)
def test_values_orjson_refuses_or_rewrites_keep_their_meaning(value: Any) -> None:
    assert json.loads(json_text(value)) == json.loads(json.dumps(value))
