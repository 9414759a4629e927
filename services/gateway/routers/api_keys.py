"""/api-keys: create (the key is shown once), list and revoke (admin scope)."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import User
from db.repositories import users as repository
from services.auth.credentials import new_api_key
from services.auth.principal import Principal
from services.auth.scopes import ADMIN
from services.errors import NotFound, ValidationFailed
from services.gateway.dependencies import CallerDep, StoreDep, require
from services.gateway.query import PageQuery
from services.gateway.schemas import (
    ERROR_RESPONSES,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
)
from services.http.envelope import Envelope, PageEnvelope, success

router = APIRouter(
    prefix="/api-keys", tags=["api-keys"], responses=ERROR_RESPONSES, dependencies=[require(ADMIN)]
)


@router.post(
    "",
    status_code=201,
    response_model=Envelope[ApiKeyCreated],
    summary="Create an API key (shown once)",
)
async def create(
    body: ApiKeyCreate, store: StoreDep, caller: CallerDep, response: Response
) -> dict[str, Any]:
    generated = new_api_key()
    async with store.sessions() as session, session.begin():
        owner = await _owner(session, body.user_id, caller)
        scopes = sorted(set(body.scopes or owner.scopes))
        if not set(scopes) <= set(owner.scopes) and ADMIN not in owner.scopes:
            raise ValidationFailed(
                "a key cannot have scopes its owner lacks",
                details={"errors": [{"field": "scopes", "code": "too_wide"}]},
            )
        key = await repository.create_api_key(
            session=session,
            user_id=owner.id,
            name=body.name,
            prefix=generated.prefix,
            key_hash=generated.digest,
            scopes=scopes,
            now=datetime.now(UTC),
        )
        public = ApiKeyPublic.model_validate(key)
    response.headers["Cache-Control"] = "no-store"
    return success(ApiKeyCreated(**public.model_dump(), key=generated.secret))


@router.get("", response_model=PageEnvelope[ApiKeyPublic], summary="List API keys (never the keys)")
async def list_all(store: StoreDep, page: Annotated[PageQuery, Query()]) -> dict[str, Any]:
    async with store.sessions() as session:
        total, keys = await repository.list_api_keys(
            session=session, user_id=None, offset=page.offset, limit=page.limit
        )
    return success([ApiKeyPublic.model_validate(key) for key in keys], **page.meta(total))


@router.delete(
    "/{key_id}",
    status_code=204,
    response_class=Response,
    summary="Revoke an API key, at once on every worker",
)
async def revoke(key_id: uuid.UUID, store: StoreDep) -> Response:
    async with store.sessions() as session, session.begin():
        if await repository.get_api_key(session=session, key_id=key_id) is None:
            raise NotFound(f"no API key {key_id}")
        await repository.revoke_api_key(session=session, key_id=key_id, now=datetime.now(UTC))
    return Response(status_code=204)


async def _owner(
    session: AsyncSession, user_id: uuid.UUID | None, caller: Principal | None
) -> User:
    if user_id is None:
        if caller is None:
            raise ValidationFailed("user_id is required when auth is off")
        user = await repository.get_user_by_username(session=session, username=caller.subject)
    else:
        user = await repository.get_user(session=session, user_id=user_id)
    if user is None:
        raise NotFound("no such user to own the key")
    return user
