"""Account operations shared by the admin API and the CLI.

Every change to an account replaces its credential epoch, which revokes the tokens issued
before (see services.auth.authenticator). Argon2 runs in a worker thread, never on the loop.
"""

import asyncio
import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import User
from db.repositories import users as repository
from services.auth.credentials import hash_password, new_credential_epoch
from services.auth.epochs import GONE, CredentialEpochs
from services.auth.scopes import ADMIN
from services.errors import Conflict, NotFound


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
                credential_epoch=new_credential_epoch(),
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


async def change_user(
    sessions: async_sessionmaker[AsyncSession],
    epochs: CredentialEpochs | None,
    user_id: uuid.UUID,
    *,
    password: str | None = None,
    scopes: list[str] | None = None,
    is_active: bool | None = None,
) -> User:
    """Apply the changes; tokens issued before stop working on every worker at once.
    NotFound for no such user."""
    # Argon2 takes tens of milliseconds of CPU: off the event loop.
    password_hash = (
        await asyncio.to_thread(hash_password, password) if password is not None else None
    )
    if epochs is not None:
        await epochs.before_change(user_id)
    async with sessions() as session, session.begin():
        user = await repository.get_user(session=session, user_id=user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        user = await repository.update_user(
            session=session,
            user=user,
            now=datetime.now(UTC),
            credential_epoch=new_credential_epoch(),
            password_hash=password_hash,
            scopes=sorted(set(scopes)) if scopes is not None else None,
            is_active=is_active,
        )
    if epochs is not None:
        await epochs.after_change(user_id, user.credential_epoch if user.is_active else GONE)
    return user


async def delete_user(
    sessions: async_sessionmaker[AsyncSession], epochs: CredentialEpochs | None, user_id: uuid.UUID
) -> None:
    """Remove the user, its API keys (cascade) and so every credential; NotFound if absent."""
    if epochs is not None:
        await epochs.before_change(user_id)
    async with sessions() as session, session.begin():
        user = await repository.get_user(session=session, user_id=user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        await repository.delete_user(session=session, user=user)
    if epochs is not None:
        await epochs.after_change(user_id, GONE)
