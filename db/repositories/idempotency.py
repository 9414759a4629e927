"""Idempotency keys' SQL: find an unexpired key, claim keys (first writer wins), purge old ones."""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import IdempotencyKey

PURGE_BATCH = 1_000


@dataclass(frozen=True)
class IdempotencyRecord:
    """One stored key: who sent it, a hash of what was asked, what was answered, until when."""

    principal: str
    key: str
    request_hash: str
    response: dict[str, Any]
    created_at: datetime
    expires_at: datetime


async def find_key(
    *, session: AsyncSession, principal: str, key: str, now: datetime
) -> IdempotencyRecord | None:
    """The record of `key` for `principal`, unless it has expired."""
    statement = select(IdempotencyKey).where(
        IdempotencyKey.principal == principal,
        IdempotencyKey.key == key,
        IdempotencyKey.expires_at > now,
    )
    row = (await session.scalars(statement)).one_or_none()
    if row is None:
        return None
    return IdempotencyRecord(
        principal=row.principal,
        key=row.key,
        request_hash=row.request_hash,
        response=row.response,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


async def claim_keys(
    *, session: AsyncSession, records: Sequence[IdempotencyRecord], now: datetime
) -> set[tuple[str, str]]:
    """Insert `records` (distinct keys) unless a live record holds the key; return the
    (principal, key) pairs this call inserted. Expired records of those keys go first."""
    if not records:
        return set()
    same_key = [
        and_(IdempotencyKey.principal == record.principal, IdempotencyKey.key == record.key)
        for record in records
    ]
    await session.execute(
        delete(IdempotencyKey).where(or_(*same_key), IdempotencyKey.expires_at <= now)
    )
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(IdempotencyKey)
        .values([asdict(record) for record in records])
        .on_conflict_do_nothing(index_elements=["principal", "key"])
        .returning(IdempotencyKey.principal, IdempotencyKey.key)
    )
    result = await session.execute(statement)
    return {(principal, key) for principal, key in result.all()}


async def purge_expired(*, session: AsyncSession, now: datetime) -> None:
    """Delete up to PURGE_BATCH expired records (bounded, so a backlog never stalls a commit)."""
    expired = (
        select(IdempotencyKey.principal, IdempotencyKey.key)
        .where(IdempotencyKey.expires_at <= now)
        .limit(PURGE_BATCH)
    )
    await session.execute(
        delete(IdempotencyKey).where(
            tuple_(IdempotencyKey.principal, IdempotencyKey.key).in_(expired)
        )
    )
