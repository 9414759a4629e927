"""Query parameters are typed: anything a database or Python cannot take is refused up front."""

from typing import Any

import pytest
from pydantic import ValidationError

from services.gateway.query import PredictionFilters, PredictionListQuery


def _parameter_of(params: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        PredictionListQuery.model_validate(params)
    (error,) = caught.value.errors()
    return str(error["loc"][0])


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"filter[model]": "cancer\x00rf"}, "filter[model]"),
        ({"filter[principal]": "\x00"}, "filter[principal]"),
        ({"filter[created_after]": "0001-01-01T00:00:00+14:00"}, "filter[created_after]"),
        ({"filter[created_before]": "9999-12-31T23:59:59-14:00"}, "filter[created_before]"),
        ({"page": "²"}, "page"),
        ({"limit": "\u0661\u0660"}, "limit"),  # Arabic-Indic digits: isdigit() says yes
        ({"page": "9" * 5000}, "page"),
        ({"limit": "1" + "0" * 400}, "limit"),
        ({"filter[labelled]": "yes"}, "filter[labelled]"),
        ({"sort": "-inputs"}, "sort"),
        ({"filter[password]": "x"}, "filter[password]"),
    ],
    ids=repr,
)
def test_a_bad_value_is_refused_naming_its_parameter(
    params: dict[str, Any], parameter: str
) -> None:
    assert _parameter_of(params) == parameter


def test_filters_become_the_repository_query() -> None:
    params = PredictionListQuery.model_validate(
        {
            "page": "2",
            "limit": "10",
            "sort": "latency_ms",
            "filter[labelled]": "false",
            "filter[created_after]": "2026-01-01T01:00:00+01:00",
        }
    )
    query = params.query()

    assert (params.offset, params.limit) == (10, 10)
    assert (query.sort, query.descending, query.labelled) == ("latency_ms", False, False)
    assert query.created_after is not None
    assert query.created_after.isoformat() == "2026-01-01T00:00:00+00:00"


def test_the_export_takes_filters_but_no_paging() -> None:
    with pytest.raises(ValidationError):
        PredictionFilters.model_validate({"page": "1"})
