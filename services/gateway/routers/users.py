"""/users: the admin manages accounts (admin scope)."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from db.repositories import users as repository
from services.auth.accounts import change_user, create_user, delete_user
from services.auth.epochs import CredentialEpochs
from services.auth.scopes import ADMIN
from services.gateway.dependencies import RuntimeDep, StoreDep, require
from services.gateway.query import PageQuery
from services.gateway.runtime import GatewayRuntime
from services.gateway.schemas import (
    ERROR_RESPONSES,
    UserCreate,
    UserPublic,
    UserUpdate,
    error_responses,
)
from services.http.envelope import Envelope, PageEnvelope, success

router = APIRouter(
    prefix="/users", tags=["users"], responses=ERROR_RESPONSES, dependencies=[require(ADMIN)]
)


@router.post(
    "",
    status_code=201,
    response_model=Envelope[UserPublic],
    summary="Create a user",
    responses=error_responses(409),
)
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


@router.patch(
    "/{user_id}",
    response_model=Envelope[UserPublic],
    summary="Change a user (tokens issued before stop working at once)",
)
async def change(
    user_id: uuid.UUID, body: UserUpdate, store: StoreDep, runtime: RuntimeDep
) -> dict[str, Any]:
    user = await change_user(
        store.sessions,
        _epochs(runtime),
        user_id,
        password=body.password,
        scopes=body.scopes,
        is_active=body.is_active,
    )
    return success(UserPublic.model_validate(user))


@router.delete(
    "/{user_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a user and its API keys (every credential stops at once)",
)
async def remove(user_id: uuid.UUID, store: StoreDep, runtime: RuntimeDep) -> Response:
    await delete_user(store.sessions, _epochs(runtime), user_id)
    return Response(status_code=204)


def _epochs(runtime: GatewayRuntime) -> CredentialEpochs | None:
    """Where account changes are published (None when auth is off)."""
    authenticator = runtime.authenticator
    return authenticator.epochs if authenticator is not None else None
