"""Parse `?page&limit&sort&filter[...]` for the prediction log against allow-lists."""

from collections.abc import Mapping
from datetime import UTC, datetime

from db.repositories.predictions import SORT_COLUMNS, PredictionQuery
from services.errors import BadRequest
from services.gateway.pagination import MAX_LIMIT, Page

FILTERS = ("model", "model_version", "labelled", "created_after", "created_before", "principal")
PAGING = ("page", "limit", "sort")


def parse_list_query(
    params: Mapping[str, str], *, paged: bool = True
) -> tuple[Page, PredictionQuery]:
    """Page and query from raw query parameters; BadRequest names the first bad parameter."""
    values: dict[str, object] = {}
    for key, value in params.items():
        if key in PAGING and (paged or key == "sort"):
            continue
        name = key[len("filter[") : -1] if key.startswith("filter[") and key.endswith("]") else None
        if name not in FILTERS:
            raise BadRequest(
                f"unknown query parameter {key!r}",
                details={
                    "parameter": key,
                    "allowed": [*PAGING, *(f"filter[{f}]" for f in FILTERS)],
                },
            )
        values[name] = _filter_value(key, name, value)
    sort = params.get("sort", "-created_at")
    field = sort.removeprefix("-")
    if field not in SORT_COLUMNS:
        raise BadRequest(
            f"cannot sort by {sort!r}",
            details={"parameter": "sort", "allowed": sorted(SORT_COLUMNS)},
        )
    query = PredictionQuery(sort=field, descending=sort.startswith("-"), **values)  # type: ignore[arg-type]
    return _page(params), query


def _filter_value(key: str, name: str, value: str) -> object:
    if name == "labelled":
        if value not in ("true", "false"):
            raise BadRequest(f"{key} must be true or false", details={"parameter": key})
        return value == "true"
    if name in ("created_after", "created_before"):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest(
                f"{key} must be an ISO 8601 timestamp", details={"parameter": key}
            ) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if not value or len(value) > 200:
        raise BadRequest(f"{key} must be 1 to 200 characters", details={"parameter": key})
    return value


def _page(params: Mapping[str, str]) -> Page:
    page, limit = _integer(params, "page", 1, 1_000_000), _integer(params, "limit", 50, MAX_LIMIT)
    return Page(page=page, limit=limit)


def _integer(params: Mapping[str, str], key: str, default: int, maximum: int) -> int:
    raw = params.get(key)
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise BadRequest(
            f"{key} must be an integer from 1 to {maximum}", details={"parameter": key}
        )
    return int(raw)
