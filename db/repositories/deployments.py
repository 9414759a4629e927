"""Deployment state: the current revision per model and the append-only revision history.

A change appends a revision and moves the model's pointer to it in one transaction; the pointer
moves only from the revision the change was based on, so of two concurrent changes one wins
and the other finds nothing to update (or a taken revision number) and reports a conflict.
"""

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import DeploymentRevision, ModelDeployment

_CURRENT = and_(
    ModelDeployment.model_name == DeploymentRevision.model_name,
    ModelDeployment.revision == DeploymentRevision.revision,
)


async def change_counter(*, session: AsyncSession) -> int:
    """The sum of every model's current revision: it grows with each committed change."""
    statement = select(func.coalesce(func.sum(ModelDeployment.revision), 0))
    return int((await session.execute(statement)).scalar_one())


async def current_revisions(*, session: AsyncSession) -> list[DeploymentRevision]:
    """The current revision of every model that has a deployment."""
    statement = select(DeploymentRevision).join(ModelDeployment, _CURRENT)
    return list((await session.scalars(statement)).all())


async def current_revision(*, session: AsyncSession, model_name: str) -> DeploymentRevision | None:
    """The current revision of one model, or None before its first change."""
    statement = (
        select(DeploymentRevision)
        .join(ModelDeployment, _CURRENT)
        .where(ModelDeployment.model_name == model_name)
    )
    return (await session.scalars(statement)).one_or_none()


async def get_revision(
    *, session: AsyncSession, model_name: str, revision: int
) -> DeploymentRevision | None:
    return await session.get(DeploymentRevision, (model_name, revision))


async def count_revisions(*, session: AsyncSession, model_name: str) -> int:
    statement = (
        select(func.count())
        .select_from(DeploymentRevision)
        .where(DeploymentRevision.model_name == model_name)
    )
    return int((await session.execute(statement)).scalar_one())


async def list_revisions(
    *, session: AsyncSession, model_name: str, offset: int, limit: int
) -> list[DeploymentRevision]:
    """One page of a model's history, newest revision first."""
    statement = (
        select(DeploymentRevision)
        .where(DeploymentRevision.model_name == model_name)
        .order_by(DeploymentRevision.revision.desc())
        .offset(offset)
        .limit(limit)
    )
    return list((await session.scalars(statement)).all())


async def append_revision(
    *, session: AsyncSession, row: Mapping[str, Any], based_on: int | None
) -> bool:
    """Add revision `row` and point the model at it, if its current revision is still
    `based_on` (None: it has none yet). False when another change got there first; an
    IntegrityError from the driver means the same. Not committed: the caller's transaction."""
    await session.execute(insert(DeploymentRevision), [dict(row)])
    pointer = {
        "model_name": row["model_name"],
        "revision": row["revision"],
        "updated_at": row["created_at"],
    }
    if based_on is None:
        await session.execute(insert(ModelDeployment), [pointer])
        return True
    statement = (
        update(ModelDeployment)
        .where(
            ModelDeployment.model_name == row["model_name"],
            ModelDeployment.revision == based_on,
        )
        .values(revision=row["revision"], updated_at=row["created_at"])
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def production_versions(*, session: AsyncSession, model_name: str) -> set[str]:
    """Every version that was production in some revision of the model."""
    statement = (
        select(DeploymentRevision.production)
        .where(DeploymentRevision.model_name == model_name)
        .distinct()
    )
    return set((await session.scalars(statement)).all())
