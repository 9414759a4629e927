"""The prediction log's SQL: inserts, paged and filtered reads, labels, deletes, streaming export.

Filters and sorts arrive already checked against allow-lists (`PredictionQuery`); every value
reaches the database as a bound parameter.
"""

import uuid
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, Table, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import json_text
from db.models import Prediction

SHADOW_ROLE = "shadow"
SortField = Literal["created_at", "latency_ms", "model_name", "model_version"]
SORT_COLUMNS = {
    "created_at": Prediction.created_at,
    "latency_ms": Prediction.latency_ms,
    "model_name": Prediction.model_name,
    "model_version": Prediction.model_version,
}


@dataclass(frozen=True)
class PredictionQuery:
    """Validated filters and sort order for listing predictions."""

    model: str | None = None
    model_version: str | None = None
    labelled: bool | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    principal: str | None = None
    shadow: bool = False  # shadow rows only, or (the default) the callers' predictions only
    sort: SortField = "created_at"
    descending: bool = True

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = [
            Prediction.role == SHADOW_ROLE if self.shadow else Prediction.role != SHADOW_ROLE
        ]
        if self.model is not None:
            conditions.append(Prediction.model_name == self.model)
        if self.model_version is not None:
            conditions.append(Prediction.model_version == self.model_version)
        if self.labelled is not None:
            conditions.append(
                Prediction.labelled_at.is_not(None)
                if self.labelled
                else Prediction.labelled_at.is_(None)
            )
        if self.created_after is not None:
            conditions.append(Prediction.created_at > self.created_after)
        if self.created_before is not None:
            conditions.append(Prediction.created_at < self.created_before)
        if self.principal is not None:
            conditions.append(Prediction.principal == self.principal)
        return conditions

    def order_by(self) -> list[Any]:
        column = SORT_COLUMNS[self.sort]
        direction = column.desc() if self.descending else column.asc()
        tie_break = Prediction.id.desc() if self.descending else Prediction.id.asc()
        return [direction, tie_break]


PREDICTIONS_TABLE = cast(Table, Prediction.__table__)  # a mapped class always has a Table


async def add_predictions(*, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows in one executemany (not committed: the caller's transaction groups them).

    A Core executemany on the session's connection: neither ORM objects (the unit of work) nor
    the ORM's bulk-insert path (`session.execute(insert(Prediction), rows)`), both of which
    cost gateway CPU on every row.
    """
    if rows:
        connection = await session.connection()
        await connection.execute(insert(PREDICTIONS_TABLE), list(rows))


COPY_COLUMNS = (
    "id",
    "request_id",
    "model_name",
    "model_version",
    "inputs",
    "outputs",
    "latency_ms",
    "principal",
    "created_at",
    "role",
)


async def copy_predictions(*, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows at once (a batch job's chunk; not committed): PostgreSQL's COPY on the
    session's own connection (inside its transaction), an executemany elsewhere."""
    if not rows:
        return
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        await connection.execute(insert(PREDICTIONS_TABLE), list(rows))
        return
    raw = await connection.get_raw_connection()
    records = [
        (
            row["id"],
            row["request_id"],
            row["model_name"],
            row["model_version"],
            json_text(row["inputs"]),
            json_text(row["outputs"]),
            row["latency_ms"],
            row["principal"],
            row["created_at"],
            row["role"],
        )
        for row in rows
    ]
    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        PREDICTIONS_TABLE.name, records=records, columns=COPY_COLUMNS
    )


async def count_predictions(*, session: AsyncSession, query: PredictionQuery) -> int:
    statement = select(func.count()).select_from(Prediction).where(*query.conditions())
    return int((await session.execute(statement)).scalar_one())


async def list_predictions(
    *, session: AsyncSession, query: PredictionQuery, offset: int, limit: int
) -> list[Prediction]:
    """One page, paged in SQL."""
    statement = (
        select(Prediction)
        .where(*query.conditions())
        .order_by(*query.order_by())
        .offset(offset)
        .limit(limit)
    )
    return list((await session.scalars(statement)).all())


async def get_prediction(*, session: AsyncSession, prediction_id: uuid.UUID) -> Prediction | None:
    return await session.get(Prediction, prediction_id)


async def set_label(
    *, session: AsyncSession, prediction_id: uuid.UUID, label: Any, labelled_at: datetime
) -> bool:
    """Record ground truth; False when no such prediction."""
    statement = (
        update(Prediction)
        .where(Prediction.id == prediction_id)
        .values(label=label, labelled_at=labelled_at)
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def delete_prediction(*, session: AsyncSession, prediction_id: uuid.UUID) -> bool:
    result = await session.execute(delete(Prediction).where(Prediction.id == prediction_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def stream_predictions(
    *, session: AsyncSession, query: PredictionQuery, batch_size: int = 500
) -> AsyncGenerator[Prediction, None]:
    """Every matching row, fetched in batches through a server-side cursor."""
    statement = (
        select(Prediction)
        .where(*query.conditions())
        .order_by(*query.order_by())
        .execution_options(yield_per=batch_size)
    )
    result = await session.stream_scalars(statement)
    async for row in result:
        yield row
