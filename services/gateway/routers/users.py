"""/users: the admin manages accounts (admin scope)."""

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from db.repositories import users as repository
from services.auth.accounts import create_user
from services.auth.credentials import hash_password
from services.auth.scopes import ADMIN
from services.errors import NotFound
from services.gateway.dependencies import StoreDep, require
from services.gateway.query import PageQuery
from services.gateway.schemas import ERROR_RESPONSES, UserCreate, UserPublic, UserUpdate
from services.http.envelope import Envelope, PageEnvelope, success

router = APIRouter(
    prefix="/users", tags=["users"], responses=ERROR_RESPONSES, dependencies=[require(ADMIN)]
)


@router.post("", status_code=201, response_model=Envelope[UserPublic], summary="Create a user")
async def create(body: UserCreate, store: StoreDep) -> dict[str, Any]:
    user = await create_user(
        store.sessions, username=body.username, password=body.password, scopes=body.scopes
    )
    return success(UserPublic.model_validate(user))


@router.get("", response_model=PageEnvelope[UserPublic], summary="List users")
async def list_all(store: StoreDep, page: Annotated[PageQuery, Query()]) -> dict[str, Any]:
    async with store.sessions() as session:
        total, users = await repository.list_users(
            session=session, offset=page.offset, limit=page.limit
        )
    return success([UserPublic.model_validate(user) for user in users], **page.meta(total))


@router.patch("/{user_id}", response_model=Envelope[UserPublic], summary="Change a user")
async def change(user_id: uuid.UUID, body: UserUpdate, store: StoreDep) -> dict[str, Any]:
    password_hash = (
        await asyncio.to_thread(hash_password, body.password) if body.password is not None else None
    )
    async with store.sessions() as session, session.begin():
        user = await repository.get_user(session=session, user_id=user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        user = await repository.update_user(
            session=session,
            user=user,
            now=datetime.now(UTC),
            password_hash=password_hash,
            scopes=sorted(set(body.scopes)) if body.scopes is not None else None,
            is_active=body.is_active,
        )
        public = UserPublic.model_validate(user)
    return success(public)


@router.delete("/{user_id}", status_code=204, response_class=Response, summary="Delete a user")
async def remove(user_id: uuid.UUID, store: StoreDep) -> Response:
    async with store.sessions() as session, session.begin():
        user = await repository.get_user(session=session, user_id=user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        await repository.delete_user(session=session, user=user)
    return Response(status_code=204)
