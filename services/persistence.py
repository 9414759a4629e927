"""The durable prediction log as the gateway uses it: group commit, readiness, schema check."""

import asyncio
import logging
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.engine import create_engine, session_factory
from db.migrate import current_revision, head_revision
from db.repositories.predictions import add_predictions
from db.settings import DatabaseSettings
from services.batching import MicroBatcher
from services.errors import DatabaseUnavailable, SchemaBehind

logger = logging.getLogger("services.persistence")

Rows = list[dict[str, Any]]


class PredictionStore:
    """Writes prediction rows; rows from concurrent requests share one transaction."""

    def __init__(self, engine: AsyncEngine, settings: DatabaseSettings) -> None:
        self.engine = engine
        self.settings = settings
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        self._writer: MicroBatcher[Rows, None] = MicroBatcher(
            self._commit,
            max_in_flight=settings.group_commit_in_flight,
            max_weight=settings.group_commit_max_rows,
            weight=len,
        )

    @classmethod
    def connect(cls, settings: DatabaseSettings) -> "PredictionStore":
        return cls(create_engine(settings), settings)

    async def record(self, rows: Rows) -> None:
        """Return only once `rows` are committed; DatabaseUnavailable otherwise."""
        try:
            await asyncio.wait_for(self._writer.submit(rows), timeout=self.settings.write_timeout_s)
        except Exception as exc:
            # Whatever failed (a timeout, SQLAlchemy, or the driver itself: asyncpg raises
            # CannotConnectNowError while PostgreSQL starts up), the row is not confirmed.
            logger.error("prediction commit failed: %r", exc)
            raise DatabaseUnavailable(
                "the prediction could not be confirmed as stored, so it is not returned; "
                "retry later"
            ) from exc

    async def _commit(self, batches: list[Rows]) -> list[None]:
        async with self.sessions() as session, session.begin():
            await add_predictions(session=session, rows=[row for rows in batches for row in rows])
        return [None] * len(batches)

    async def ping(self) -> tuple[bool, str]:
        """Readiness: the database answers a trivial query within a second or two."""
        try:
            async with asyncio.timeout(2.0), self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            return False, f"unreachable ({type(exc).__name__})"
        return True, "ok"

    async def check_schema(self) -> None:
        """Refuse to serve on a database whose schema is behind the code."""
        current, head = await current_revision(self.engine), head_revision()
        if current != head:
            raise SchemaBehind(
                f"database schema is at {current or 'nothing (empty database)'} but the code "
                f"needs {head}: run `make migrate` (or `python -m db.migrate upgrade`)"
            )

    async def close(self) -> None:
        await self.engine.dispose()
