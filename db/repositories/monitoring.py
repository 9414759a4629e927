"""Reads of the prediction log over a time window for drift, live quality and shadow
comparison: only the columns each needs, newest first, at most `limit` rows, streamed through
a server-side cursor so memory stays constant however large the window."""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from db.models import Prediction
from db.repositories.predictions import SHADOW_ROLE

BATCH_ROWS = 1_000


def _window(
    table: Any, model_name: str, start: datetime, end: datetime
) -> list[ColumnElement[bool]]:
    return [table.model_name == model_name, table.created_at >= start, table.created_at < end]


async def _stream(session: AsyncSession, statement: Select[Any]) -> AsyncIterator[Any]:
    result = await session.stream(statement.execution_options(yield_per=BATCH_ROWS))
    async for row in result:
        yield row


async def stream_inputs(
    *, session: AsyncSession, model_name: str, start: datetime, end: datetime, limit: int
) -> AsyncIterator[dict[str, Any]]:
    """The inputs of the callers' predictions (no shadow copies), whichever version answered."""
    statement = (
        select(Prediction.inputs)
        .where(*_window(Prediction, model_name, start, end), Prediction.role != SHADOW_ROLE)
        .order_by(Prediction.created_at.desc())
        .limit(limit)
    )
    async for (inputs,) in _stream(session, statement):
        yield inputs


async def stream_labelled(
    *, session: AsyncSession, model_name: str, start: datetime, end: datetime, limit: int
) -> AsyncIterator[tuple[str, dict[str, Any], Any]]:
    """(version, outputs, label) of the callers' labelled predictions."""
    statement = (
        select(Prediction.model_version, Prediction.outputs, Prediction.label)
        .where(
            *_window(Prediction, model_name, start, end),
            Prediction.role != SHADOW_ROLE,
            Prediction.labelled_at.is_not(None),
        )
        .order_by(Prediction.created_at.desc())
        .limit(limit)
    )
    async for version, outputs, label in _stream(session, statement):
        yield version, outputs, label


async def stream_shadow_pairs(
    *,
    session: AsyncSession,
    model_name: str,
    start: datetime,
    end: datetime,
    limit: int,
    labelled_only: bool = False,
) -> AsyncIterator[tuple[str, str, dict[str, Any], dict[str, Any], Any]]:
    """(shadow version, primary version, shadow outputs, primary outputs, primary label or
    None) for the shadow rows of the window; with `labelled_only`, those whose primary
    prediction has its label."""
    primary = aliased(Prediction)
    labelled = [primary.labelled_at.is_not(None)] if labelled_only else []
    statement = (
        select(
            Prediction.model_version,
            primary.model_version,
            Prediction.outputs,
            primary.outputs,
            primary.label,
        )
        .join(primary, primary.id == Prediction.shadow_of)
        .where(
            *_window(Prediction, model_name, start, end),
            Prediction.role == SHADOW_ROLE,
            *labelled,
        )
        .order_by(Prediction.created_at.desc())
        .limit(limit)
    )
    async for shadow_version, primary_version, shadow, production, label in _stream(
        session, statement
    ):
        yield shadow_version, primary_version, shadow, production, label
