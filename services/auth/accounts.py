"""Account operations shared by the admin API and the CLI."""

import asyncio
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import User
from db.repositories import users as repository
from services.auth.credentials import hash_password
from services.auth.scopes import ADMIN
from services.errors import Conflict


async def create_user(
    sessions: async_sessionmaker[AsyncSession], *, username: str, password: str, scopes: list[str]
) -> User:
    """A new active user; Conflict when the username is taken."""
    # Argon2 takes tens of milliseconds of CPU: off the event loop.
    password_hash = await asyncio.to_thread(hash_password, password)
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
