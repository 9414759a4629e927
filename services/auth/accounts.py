"""Account operations shared by the admin API and the CLI."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ApiKey, User
from db.repositories import users as repository
from services.auth.credentials import hash_password
from services.auth.scopes import ADMIN
from services.errors import Conflict
from services.gateway.envelope import iso_utc


async def create_user(
    sessions: async_sessionmaker[AsyncSession], *, username: str, password: str, scopes: list[str]
) -> User:
    """A new active user; Conflict when the username is taken."""
    password_hash = hash_password(password)
    try:
        async with sessions() as session, session.begin():
            return await repository.create_user(
                session=session,
                username=username,
                password_hash=password_hash,
                scopes=sorted(set(scopes)),
                now=datetime.now(UTC),
            )
    except repository.DuplicateUsername:
        raise Conflict(f"username {username!r} is taken", details={"field": "username"}) from None


async def bootstrap_admin(
    sessions: async_sessionmaker[AsyncSession], *, username: str, password: str
) -> User:
    """The first admin; Conflict once any admin exists (there are no default credentials)."""
    async with sessions() as session:
        if await repository.admin_exists(session=session):
            raise Conflict("an admin already exists; create further users through the API")
    return await create_user(sessions, username=username, password=password, scopes=[ADMIN])


def public_user(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "username": user.username,
        "scopes": list(user.scopes),
        "is_active": user.is_active,
        "created_at": iso_utc(user.created_at),
        "updated_at": iso_utc(user.updated_at),
    }


def public_key(key: ApiKey) -> dict[str, Any]:
    return {
        "id": str(key.id),
        "name": key.name,
        "user_id": str(key.user_id),
        "prefix": key.prefix,
        "scopes": list(key.scopes),
        "created_at": iso_utc(key.created_at),
        "revoked_at": iso_utc(key.revoked_at) if key.revoked_at else None,
    }
