"""A lease has one holder at a time, renewed by it, taken over once it expires."""

from datetime import UTC, datetime, timedelta

import pytest

from db.engine import create_engine, session_factory
from db.repositories.leases import acquire_lease
from db.settings import DatabaseSettings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]
TTL = timedelta(seconds=30)


async def test_one_holder_at_a_time_until_the_lease_expires(db_url: str) -> None:
    engine = create_engine(DatabaseSettings(url=db_url))
    sessions = session_factory(engine)
    now = datetime.now(UTC)

    async def take(holder: str, at: datetime) -> bool:
        async with sessions() as session:
            return await acquire_lease(session=session, name="job", holder=holder, now=at, ttl=TTL)

    try:
        first = await take("worker-1", now)
        second = await take("worker-2", now + timedelta(seconds=1))
        renewed = await take("worker-1", now + timedelta(seconds=20))
        still_held = await take("worker-2", now + timedelta(seconds=40))  # renewed at 20 s
        taken_over = await take("worker-2", now + timedelta(seconds=51))
        lost = await take("worker-1", now + timedelta(seconds=52))
    finally:
        await engine.dispose()

    assert (first, second, renewed, still_held, taken_over, lost) == (
        True,
        False,
        True,
        False,
        True,
        False,
    )
