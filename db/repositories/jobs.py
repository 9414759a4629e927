"""Batch-scoring jobs' SQL: the job table is also the queue (claim by compare-and-set, leases).

Every state change is a conditional UPDATE whose WHERE names the state it expects, so two
workers, a cancel and a worker, or a worker and its own expired lease never both win.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ScoringJob, ScoringJobChunk

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
ACTIVE: tuple[JobStatus, ...] = ("queued", "running")
FINISHED: tuple[JobStatus, ...] = ("succeeded", "failed", "cancelled")
CLAIM_CANDIDATES = 8


async def create_job(*, session: AsyncSession, values: dict[str, Any]) -> None:
    """Insert a job (not committed)."""
    await session.execute(insert(ScoringJob), [values])


async def get_job(*, session: AsyncSession, job_id: uuid.UUID) -> ScoringJob | None:
    return await session.get(ScoringJob, job_id, populate_existing=True)


def _filters(principal: str | None, status: JobStatus | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if principal is not None:
        conditions.append(ScoringJob.principal == principal)
    if status is not None:
        conditions.append(ScoringJob.status == status)
    return conditions


async def count_jobs(
    *, session: AsyncSession, principal: str | None, status: JobStatus | None
) -> int:
    statement = select(func.count()).select_from(ScoringJob).where(*_filters(principal, status))
    return int((await session.execute(statement)).scalar_one())


async def list_jobs(
    *,
    session: AsyncSession,
    principal: str | None,
    status: JobStatus | None,
    offset: int,
    limit: int,
) -> list[ScoringJob]:
    """One page, newest first."""
    statement = (
        select(ScoringJob)
        .where(*_filters(principal, status))
        .order_by(ScoringJob.created_at.desc(), ScoringJob.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list((await session.scalars(statement)).all())


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(
        ScoringJob.status == "queued",
        and_(ScoringJob.status == "running", ScoringJob.lease_expires_at < now),
    )


async def claim_job(
    *, session: AsyncSession, holder: str, now: datetime, lease: timedelta
) -> uuid.UUID | None:
    """Take the oldest queued job, or one whose holder stopped renewing its lease; commits.

    A compare-and-set per candidate (no SKIP LOCKED, so SQLite and PostgreSQL behave alike):
    the UPDATE only matches while the job is still claimable.
    """
    candidates: Sequence[uuid.UUID] = (
        await session.scalars(
            select(ScoringJob.id)
            .where(_claimable(now))
            .order_by(ScoringJob.created_at, ScoringJob.id)
            .limit(CLAIM_CANDIDATES)
        )
    ).all()
    for job_id in candidates:
        claimed = await session.execute(
            update(ScoringJob)
            .where(ScoringJob.id == job_id, _claimable(now))
            .values(
                status="running",
                holder=holder,
                lease_expires_at=now + lease,
                attempts=ScoringJob.attempts + 1,
                started_at=func.coalesce(ScoringJob.started_at, now),
                updated_at=now,
            )
        )
        if claimed.rowcount:  # type: ignore[attr-defined]
            await session.commit()
            return job_id
    await session.rollback()
    return None


def _held(job_id: uuid.UUID, holder: str) -> ColumnElement[bool]:
    return and_(
        ScoringJob.id == job_id, ScoringJob.holder == holder, ScoringJob.status == "running"
    )


async def record_chunk(
    *,
    session: AsyncSession,
    job_id: uuid.UUID,
    holder: str,
    chunk: int,
    rows: int,
    failed: int,
    now: datetime,
    lease: timedelta,
) -> bool:
    """Count chunk `chunk` as done and renew the lease (not committed: the chunk's logged rows
    commit with it). False when the job is no longer this holder's to advance (cancelled,
    taken over after an expired lease), or the chunk was already counted."""
    advanced = await session.execute(
        update(ScoringJob)
        .where(_held(job_id, holder), ScoringJob.chunks_done == chunk)
        .values(
            chunks_done=chunk + 1,
            rows_done=ScoringJob.rows_done + rows,
            rows_failed=ScoringJob.rows_failed + failed,
            lease_expires_at=now + lease,
            updated_at=now,
        )
    )
    return bool(advanced.rowcount)  # type: ignore[attr-defined]


async def add_chunk(*, session: AsyncSession, values: dict[str, Any]) -> None:
    """The chunk's entry in the job's log (not committed: it commits with the chunk)."""
    await session.execute(insert(ScoringJobChunk), [values])


async def list_chunks(*, session: AsyncSession, job_id: uuid.UUID) -> list[ScoringJobChunk]:
    statement = (
        select(ScoringJobChunk)
        .where(ScoringJobChunk.job_id == job_id)
        .order_by(ScoringJobChunk.chunk)
    )
    return list((await session.scalars(statement)).all())


async def renew_lease(
    *, session: AsyncSession, job_id: uuid.UUID, holder: str, now: datetime, lease: timedelta
) -> bool:
    """Extend the holder's lease (commits); False when the job is no longer held by it."""
    renewed = await session.execute(
        update(ScoringJob)
        .where(_held(job_id, holder))
        .values(lease_expires_at=now + lease, updated_at=now)
    )
    await session.commit()
    return bool(renewed.rowcount)  # type: ignore[attr-defined]


async def finish_job(
    *,
    session: AsyncSession,
    job_id: uuid.UUID,
    holder: str,
    status: JobStatus,
    now: datetime,
    result_path: str | None = None,
    error: str | None = None,
    rows_total: int | None = None,
) -> bool:
    """End a held job (commits); False when it was no longer this holder's."""
    values: dict[str, Any] = {
        "status": status,
        "holder": None,
        "lease_expires_at": None,
        "updated_at": now,
        "finished_at": now,
        "result_path": result_path,
        "error": error,
    }
    if rows_total is not None:
        values["rows_total"] = rows_total
    elif status == "succeeded":
        values["rows_total"] = ScoringJob.rows_done  # a CSV's count is known only now
    ended = await session.execute(update(ScoringJob).where(_held(job_id, holder)).values(values))
    await session.commit()
    return bool(ended.rowcount)  # type: ignore[attr-defined]


async def release_job(
    *, session: AsyncSession, job_id: uuid.UUID, holder: str, now: datetime
) -> bool:
    """Give a held job back to the queue (this worker is stopping); commits. The attempt it
    used is returned too: stopping cleanly is not the job's fault."""
    released = await session.execute(
        update(ScoringJob)
        .where(_held(job_id, holder))
        .values(
            status="queued",
            holder=None,
            lease_expires_at=None,
            attempts=ScoringJob.attempts - 1,
            updated_at=now,
        )
    )
    await session.commit()
    return bool(released.rowcount)  # type: ignore[attr-defined]


async def fail_abandoned(
    *, session: AsyncSession, job_id: uuid.UUID, now: datetime, error: str
) -> None:
    """Mark a job failed whatever holds it (it used up its attempts); commits."""
    await session.execute(
        update(ScoringJob)
        .where(ScoringJob.id == job_id, ScoringJob.status.in_(ACTIVE))
        .values(
            status="failed",
            holder=None,
            lease_expires_at=None,
            error=error,
            updated_at=now,
            finished_at=now,
        )
    )
    await session.commit()


async def cancel_job(*, session: AsyncSession, job_id: uuid.UUID, now: datetime) -> bool:
    """Cancel a queued or running job (not committed); False when it had already finished.
    Its holder notices at its next chunk, whose rows then roll back."""
    cancelled = await session.execute(
        update(ScoringJob)
        .where(ScoringJob.id == job_id, ScoringJob.status.in_(ACTIVE))
        .values(
            status="cancelled", holder=None, lease_expires_at=None, updated_at=now, finished_at=now
        )
    )
    return bool(cancelled.rowcount)  # type: ignore[attr-defined]


async def delete_job(*, session: AsyncSession, job_id: uuid.UUID) -> bool:
    """Delete a finished job's record (not committed)."""
    deleted = await session.execute(
        delete(ScoringJob).where(ScoringJob.id == job_id, ScoringJob.status.in_(FINISHED))
    )
    return bool(deleted.rowcount)  # type: ignore[attr-defined]
