"""Users and their API keys."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, cast, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ApiKey, User


class DuplicateUsername(Exception):
    """The username is taken."""


async def create_user(
    *,
    session: AsyncSession,
    username: str,
    password_hash: str,
    scopes: list[str],
    credential_epoch: str,
    now: datetime,
) -> User:
    user = User(
        id=uuid.uuid4(),
        username=username,
        password_hash=password_hash,
        scopes=scopes,
        is_active=True,
        credential_epoch=credential_epoch,
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        raise DuplicateUsername(username) from None
    return user


async def get_user(*, session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def get_user_by_username(*, session: AsyncSession, username: str) -> User | None:
    user: User | None = await session.scalar(select(User).where(User.username == username))
    return user


async def admin_exists(*, session: AsyncSession) -> bool:
    """Whether any user holds the admin scope (scopes are a JSON list; compared as text)."""
    statement = select(User.id).where(cast(User.scopes, String).like('%"admin"%')).limit(1)
    return (await session.scalar(statement)) is not None


async def list_users(*, session: AsyncSession, offset: int, limit: int) -> tuple[int, list[User]]:
    total = int(await session.scalar(select(func.count()).select_from(User)) or 0)
    rows = await session.scalars(
        select(User).order_by(User.created_at, User.id).offset(offset).limit(limit)
    )
    return total, list(rows)


async def update_user(
    *,
    session: AsyncSession,
    user: User,
    now: datetime,
    credential_epoch: str,
    password_hash: str | None = None,
    scopes: list[str] | None = None,
    is_active: bool | None = None,
) -> User:
    """Apply the changes and the new credential epoch (which revokes the user's tokens)."""
    user.credential_epoch = credential_epoch
    if password_hash is not None:
        user.password_hash = password_hash
    if scopes is not None:
        user.scopes = scopes
    if is_active is not None:
        user.is_active = is_active
    user.updated_at = now
    await session.flush()
    return user


@dataclass(frozen=True)
class AccountState:
    """What a token check needs to know about a user, read fresh."""

    username: str
    scopes: list[str]
    is_active: bool
    credential_epoch: str


async def account_state(*, session: AsyncSession, user_id: uuid.UUID) -> AccountState | None:
    """One primary-key read of the columns a token check needs; None when the user is gone."""
    row = (
        await session.execute(
            select(User.username, User.scopes, User.is_active, User.credential_epoch).where(
                User.id == user_id
            )
        )
    ).first()
    if row is None:
        return None
    return AccountState(
        username=row.username,
        scopes=list(row.scopes),
        is_active=row.is_active,
        credential_epoch=row.credential_epoch,
    )


async def delete_user(*, session: AsyncSession, user: User) -> None:
    await session.delete(user)
    await session.flush()


async def create_api_key(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    name: str,
    prefix: str,
    key_hash: str,
    scopes: list[str],
    now: datetime,
) -> ApiKey:
    key = ApiKey(
        id=uuid.uuid4(),
        user_id=user_id,
        name=name,
        prefix=prefix,
        key_hash=key_hash,
        scopes=scopes,
        created_at=now,
        revoked_at=None,
    )
    session.add(key)
    await session.flush()
    return key


async def find_api_key(*, session: AsyncSession, prefix: str) -> tuple[ApiKey, User] | None:
    """The key with `prefix` and its owner, whether or not it is revoked."""
    row = (
        await session.execute(
            select(ApiKey, User)
            .join(User, User.id == ApiKey.user_id)
            .where(ApiKey.prefix == prefix)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def list_api_keys(
    *, session: AsyncSession, user_id: uuid.UUID | None, offset: int, limit: int
) -> tuple[int, list[ApiKey]]:
    condition = [] if user_id is None else [ApiKey.user_id == user_id]
    total = int(
        await session.scalar(select(func.count()).select_from(ApiKey).where(*condition)) or 0
    )
    rows = await session.scalars(
        select(ApiKey)
        .where(*condition)
        .order_by(ApiKey.created_at, ApiKey.id)
        .offset(offset)
        .limit(limit)
    )
    return total, list(rows)


async def revoke_api_key(*, session: AsyncSession, key_id: uuid.UUID, now: datetime) -> bool:
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def get_api_key(*, session: AsyncSession, key_id: uuid.UUID) -> ApiKey | None:
    return await session.get(ApiKey, key_id)
