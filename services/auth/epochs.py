"""Each user's current credential epoch, as every worker and replica sees it.

The database is the authority. Redis (when configured) holds a copy per user, so a request
costs one Redis GET rather than a database read. An account change deletes the copy before its
transaction and writes the new epoch after the commit, so the next request on any worker sees
the change (zero staleness). Only if Redis fails between those two writes, while a request
races in and repopulates the copy from the old row, can a stale copy live, at most
`AUTH_EPOCH_CACHE_TTL_S`. Without Redis, or while it is down, every check reads the database.
"""

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories import users as repository
from services.errors import ServiceUnavailable
from services.redis_client import RedisGuard

logger = logging.getLogger("services.auth")
GONE = "-"  # the epoch of a deleted or deactivated account: no token matches it


class AccountsUnavailable(Exception):
    """The account behind a credential could not be read (the database failed): retryable."""


class CredentialEpochs:
    """Reads each user's epoch (Redis copy, else the database) and publishes changes."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], guard: RedisGuard, *, ttl_s: int
    ) -> None:
        self.sessions = sessions
        self.guard = guard
        self.ttl_s = ttl_s

    @staticmethod
    def key(user_id: uuid.UUID) -> str:
        return f"auth:v1:epoch:{user_id.hex}"

    async def current(self, user_id: uuid.UUID) -> str:
        """The user's epoch now; GONE for a deleted or inactive account."""
        cached = await self._redis_get(user_id)
        if cached is not None:
            return cached
        epoch = await self._database(user_id)
        await self._redis_set(user_id, epoch, only_if_absent=True)
        return epoch

    async def before_change(self, user_id: uuid.UUID) -> None:
        """Drop the shared copy before an account change; refuse the change if Redis is
        configured but the copy cannot be dropped (another worker might keep using it)."""
        if self.guard.client is None:
            return
        try:
            await self.guard.client.delete(self.key(user_id))
        except Exception as exc:
            self.guard.failed("auth", exc)
            raise ServiceUnavailable(
                "the change cannot be propagated to every worker right now; retry shortly"
            ) from None

    async def after_change(self, user_id: uuid.UUID, epoch: str) -> None:
        """Publish the committed epoch (GONE after deletion or deactivation)."""
        await self._redis_set(user_id, epoch, only_if_absent=False)

    async def _database(self, user_id: uuid.UUID) -> str:
        try:
            async with self.sessions() as session:
                state = await repository.account_state(session=session, user_id=user_id)
        except Exception as exc:
            # SQLAlchemy's errors, and the driver's own (asyncpg raises CannotConnectNowError
            # while PostgreSQL starts): the credential can be neither accepted nor refused.
            logger.error("account lookup failed: %r", exc)
            raise AccountsUnavailable(type(exc).__name__) from exc
        if state is None or not state.is_active:
            return GONE
        return state.credential_epoch

    async def _redis_get(self, user_id: uuid.UUID) -> str | None:
        if self.guard.client is None or not self.guard.usable:
            return None
        try:
            value: bytes | None = await self.guard.client.get(self.key(user_id))
        except Exception as exc:
            self.guard.failed("auth", exc)
            return None
        self.guard.recovered()
        return value.decode() if value is not None else None

    async def _redis_set(self, user_id: uuid.UUID, epoch: str, *, only_if_absent: bool) -> None:
        if self.guard.client is None or not self.guard.usable:
            return
        try:
            await self.guard.client.set(self.key(user_id), epoch, ex=self.ttl_s, nx=only_if_absent)
        except Exception as exc:
            self.guard.failed("auth", exc)
            if not only_if_absent:
                logger.error("could not publish the new credential epoch of %s: %r", user_id, exc)
