"""`?page=1&limit=50` paging, checked the same way on every list endpoint."""

import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

MAX_LIMIT = 200


@dataclass(frozen=True)
class Page:
    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    def meta(self, total: int) -> dict[str, int]:
        return {
            "total": total,
            "pages": math.ceil(total / self.limit) if total else 0,
            "page": self.page,
            "limit": self.limit,
        }


async def page_params(
    page: Annotated[int, Query(ge=1, le=1_000_000, description="1-based page number")] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = 50,
) -> Page:
    return Page(page=page, limit=limit)


PageDep = Annotated[Page, Depends(page_params)]
