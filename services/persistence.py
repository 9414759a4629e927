"""The durable prediction log as the gateway uses it: group commit, idempotency keys, a circuit
breaker, readiness and the schema check."""

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.engine import create_engine, session_factory
from db.migrate import current_revision, head_revision
from db.repositories.idempotency import IdempotencyRecord, claim_keys, find_key, purge_expired
from db.repositories.predictions import add_predictions
from db.settings import DatabaseSettings
from services.batching import MicroBatcher
from services.circuit import CircuitBreaker
from services.errors import DatabaseUnavailable, SchemaBehind
from services.observability.metrics import breaker_listener, report_up

logger = logging.getLogger("services.persistence")

Rows = list[dict[str, Any]]
DEPENDENCY = "database"
PING_TIMEOUT_S = 1.0  # /ready must tell the truth about the database within about a second
PURGE_EVERY = timedelta(minutes=1)
_DRIVER_MODULES = ("asyncpg", "aiosqlite", "sqlite3", "sqlalchemy")


@dataclass(frozen=True)
class IdempotencyClaim:
    """An Idempotency-Key to store with a prediction's rows, in the same transaction."""

    principal: str
    key: str
    request_hash: str
    response: dict[str, Any]
    ttl: timedelta


@dataclass(frozen=True)
class _Submission:
    rows: Rows
    claim: IdempotencyClaim | None


class PredictionStore:
    """Writes prediction rows; rows from concurrent requests share one transaction."""

    def __init__(self, engine: AsyncEngine, settings: DatabaseSettings) -> None:
        self.engine = engine
        self.settings = settings
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        self.breaker = CircuitBreaker(
            pause_s=settings.retry_after_s, on_change=breaker_listener(DEPENDENCY)
        )
        self._writer: MicroBatcher[_Submission, bool] = MicroBatcher(
            self._commit,
            max_in_flight=settings.group_commit_in_flight,
            max_weight=settings.group_commit_max_rows,
            weight=lambda submission: max(1, len(submission.rows)),
        )
        self._purged_at = datetime.min.replace(tzinfo=UTC)

    @classmethod
    def connect(cls, settings: DatabaseSettings) -> "PredictionStore":
        return cls(create_engine(settings), settings)

    def admit(self, *, trial: bool = False) -> None:
        """Fail fast (503 with Retry-After) while the breaker is open. With `trial`, this call
        is the one let through after a pause (the call that will tell the breaker the outcome);
        without, it only checks, for work that comes before the database call."""
        if not (self.breaker.allow() if trial else not self.breaker.open):
            raise DatabaseUnavailable(
                "the database is not available right now; retry later",
                retry_after_s=self.breaker.retry_after_s(),
            )

    def observe(self, exc: BaseException | None) -> None:
        """Feed the breaker with the outcome of a database call (None: it worked)."""
        if exc is None:
            if self.breaker.succeeded():
                logger.warning("the database is back")
        elif (is_database_failure(exc) or isinstance(exc, TimeoutError)) and self.breaker.failed():
            logger.error("the database is unavailable: %r", exc)

    async def record(self, rows: Rows, claim: IdempotencyClaim | None = None) -> bool:
        """Return only once `rows` are committed; DatabaseUnavailable otherwise. False (nothing
        stored) when another request committed `claim`'s key first."""
        self.admit(trial=True)
        try:
            stored = await asyncio.wait_for(
                self._writer.submit(_Submission(rows, claim)), timeout=self.settings.write_timeout_s
            )
        except Exception as exc:
            # Whatever failed (a timeout, SQLAlchemy, or the driver itself: asyncpg raises
            # CannotConnectNowError while PostgreSQL starts up), the row is not confirmed.
            logger.error("prediction commit failed: %r", exc)
            self.observe(exc)
            raise DatabaseUnavailable(
                "the prediction could not be confirmed as stored, so it is not returned; "
                "retry later",
                retry_after_s=self.breaker.retry_after_s(),
            ) from exc
        self.observe(None)
        return stored

    async def find_idempotent(self, principal: str, key: str) -> IdempotencyRecord | None:
        """The unexpired record of `key` for `principal`, if one was committed."""
        self.admit()
        try:
            async with asyncio.timeout(self.settings.write_timeout_s), self.sessions() as session:
                found = await find_key(
                    session=session, principal=principal, key=key, now=datetime.now(UTC)
                )
        except Exception as exc:
            self.observe(exc)
            if is_database_failure(exc) or isinstance(exc, TimeoutError):
                raise DatabaseUnavailable(
                    "the database is not available right now; retry later",
                    retry_after_s=self.breaker.retry_after_s(),
                ) from exc
            raise
        self.observe(None)
        return found

    async def _commit(self, batch: list[_Submission]) -> list[bool]:
        now = datetime.now(UTC)
        winners = _first_claims(batch)
        async with self.sessions() as session, session.begin():
            claims = [batch[i].claim for i in sorted(winners)]
            claimed = await claim_keys(
                session=session,
                records=[_record(claim, now) for claim in claims if claim is not None],
                now=now,
            )
            stored = [
                s.claim is None or (i in winners and (s.claim.principal, s.claim.key) in claimed)
                for i, s in enumerate(batch)
            ]
            rows = [row for s, keep in zip(batch, stored, strict=True) if keep for row in s.rows]
            await add_predictions(session=session, rows=rows)
            if now - self._purged_at > PURGE_EVERY:
                self._purged_at = now
                await purge_expired(session=session, now=now)
        return stored

    async def ping(self) -> tuple[bool, str]:
        """Readiness: the database answers a trivial query within PING_TIMEOUT_S. The answer
        also moves the breaker, so readiness and admission always agree."""
        try:
            async with asyncio.timeout(PING_TIMEOUT_S), self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            self.breaker.failed()
            report_up(DEPENDENCY, False)
            return False, f"unreachable ({type(exc).__name__})"
        self.observe(None)
        report_up(DEPENDENCY, True)
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


def _first_claims(batch: list[_Submission]) -> set[int]:
    """Indexes of submissions without a key or with the first claim of their key in `batch`."""
    seen: set[tuple[str, str]] = set()
    first = set()
    for index, submission in enumerate(batch):
        claim = submission.claim
        if claim is None:
            first.add(index)
        elif (claim.principal, claim.key) not in seen:
            seen.add((claim.principal, claim.key))
            first.add(index)
    return first


def _record(claim: IdempotencyClaim, now: datetime) -> IdempotencyRecord:
    return IdempotencyRecord(
        principal=claim.principal,
        key=claim.key,
        request_hash=claim.request_hash,
        response=claim.response,
        created_at=now,
        expires_at=now + claim.ttl,
    )


def is_database_failure(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) says the database is unreachable, restarting, out of
    connections or too slow (a retryable 503), rather than that a statement was wrong."""
    import asyncpg  # type: ignore[import-untyped]

    unavailable = (
        asyncpg.PostgresConnectionError,
        asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting, cancelled
        asyncpg.exceptions.InsufficientResourcesError,  # too many connections
        asyncpg.InterfaceError,  # the connection is closed or broken
    )
    for error in _causes(exc):
        if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(
            error,
            (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, *unavailable),
        ):
            return True
        if isinstance(error, (OSError, TimeoutError)) and _raised_in_driver(error):
            return True
    return False


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        pending += [error.__cause__, error.__context__, getattr(error, "orig", None)]


def _raised_in_driver(exc: BaseException) -> bool:
    """Socket errors and timeouts mean the database only when a driver raised them: asyncpg
    lets its connect errors (refused, reset, timed out) through unwrapped."""
    traceback = exc.__traceback__
    while traceback is not None:
        module = traceback.tb_frame.f_globals.get("__name__", "")
        if module.split(".")[0] in _DRIVER_MODULES:
            return True
        traceback = traceback.tb_next
    return False
