"""Typed query parameters: paging for every list, and the prediction log's sort and filters.

FastAPI reads them as query-parameter models (`Annotated[Model, Query()]`), so the OpenAPI
document describes every parameter with its type and limits; unknown parameters are refused.
A bad query parameter is a 400 naming it (`services.gateway.app`).
"""

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from db.repositories.predictions import PredictionQuery
from services.gateway.fields import Text

MAX_LIMIT = 200
MAX_PAGE = 1_000_000


def _utc(value: datetime) -> datetime:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return aware.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the supported range of dates") from None


FilterText = Annotated[Text, Field(min_length=1, max_length=200)]
FilterTime = Annotated[datetime, AfterValidator(_utc)]
Sort = Literal[
    "created_at",
    "-created_at",
    "latency_ms",
    "-latency_ms",
    "model_name",
    "-model_name",
    "model_version",
    "-model_version",
]


class PageQuery(BaseModel):
    """`?page=1&limit=50`."""

    model_config = ConfigDict(extra="forbid")

    page: int = Field(default=1, ge=1, le=MAX_PAGE, description="1-based page number")
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT, description="items per page")

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    def meta(self, total: int) -> dict[str, int]:
        """The pagination fields of the response meta."""
        return {
            "total": total,
            "pages": math.ceil(total / self.limit) if total else 0,
            "page": self.page,
            "limit": self.limit,
        }


class PredictionFilters(BaseModel):
    """`?sort=-created_at&filter[...]` for the prediction log."""

    model_config = ConfigDict(extra="forbid")

    sort: Sort = Field(default="-created_at", description="a field; `-` for descending")
    model: FilterText | None = Field(default=None, alias="filter[model]")
    model_version: FilterText | None = Field(default=None, alias="filter[model_version]")
    labelled: Literal["true", "false"] | None = Field(default=None, alias="filter[labelled]")
    created_after: FilterTime | None = Field(default=None, alias="filter[created_after]")
    created_before: FilterTime | None = Field(default=None, alias="filter[created_before]")
    principal: FilterText | None = Field(default=None, alias="filter[principal]")
    shadow: Literal["true", "false"] = Field(
        default="false",
        alias="filter[shadow]",
        description="`true`: only shadow versions' outputs (never returned to callers); "
        "`false` (default): only the callers' predictions",
    )

    def query(self) -> PredictionQuery:
        """The repository's query for these filters and sort order."""
        filters: dict[str, Any] = self.model_dump(include=set(PredictionFilters.model_fields))
        del filters["sort"]
        if self.labelled is not None:
            filters["labelled"] = self.labelled == "true"
        filters["shadow"] = self.shadow == "true"
        field = self.sort.removeprefix("-")
        return PredictionQuery(sort=field, descending=self.sort.startswith("-"), **filters)  # type: ignore[arg-type]


class PredictionListQuery(PageQuery, PredictionFilters):
    """Paging, sort and filters of GET /predictions."""


class JobListQuery(PageQuery):
    """Paging and the status filter of GET /jobs."""

    status: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = Field(
        default=None, alias="filter[status]", description="only jobs in this status"
    )
