"""Leases: one holder at a time for a periodic job, across workers and replicas, with expiry."""

from datetime import datetime, timedelta

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import MonitoringLease


async def acquire_lease(
    *, session: AsyncSession, name: str, holder: str, now: datetime, ttl: timedelta
) -> bool:
    """Take or renew lease `name` for `holder` until now + ttl; False while another holds it.

    Commits (a lease only counts once others can see it).
    """
    renewed = await session.execute(
        update(MonitoringLease)
        .where(
            MonitoringLease.name == name,
            or_(MonitoringLease.holder == holder, MonitoringLease.expires_at < now),
        )
        .values(holder=holder, expires_at=now + ttl)
    )
    if renewed.rowcount:  # type: ignore[attr-defined]
        await session.commit()
        return True
    exists = await session.scalar(select(MonitoringLease.name).where(MonitoringLease.name == name))
    if exists is not None:
        await session.rollback()
        return False
    try:
        await session.execute(
            insert(MonitoringLease), [{"name": name, "holder": holder, "expires_at": now + ttl}]
        )
        await session.commit()
    except IntegrityError:  # another worker created it at the same moment
        await session.rollback()
        return False
    return True
