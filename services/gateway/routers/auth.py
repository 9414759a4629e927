"""POST /auth/token: the OAuth2 password grant (RFC 6749 section 4.3), form-encoded."""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Form
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm

from db.repositories import users as repository
from services.auth.credentials import dummy_verify, verify_password
from services.errors import InvalidGrant, InvalidScope, ServiceUnavailable, UnsupportedGrantType
from services.gateway.dependencies import RuntimeDep, StoreDep
from services.gateway.schemas import ERROR_RESPONSES, Token

router = APIRouter(prefix="/auth", tags=["auth"], responses=ERROR_RESPONSES)


class PasswordGrantForm(OAuth2PasswordRequestForm):
    """FastAPI's password-grant form, with `grant_type` required and checked by the route, so
    a wrong one gets RFC 6749's `unsupported_grant_type` rather than a generic 422."""

    def __init__(
        self,
        *,
        grant_type: Annotated[str, Form(max_length=64)],
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=256)],
        scope: Annotated[str, Form(max_length=200)] = "",
        client_id: Annotated[str | None, Form(max_length=200)] = None,
        client_secret: Annotated[str | None, Form(max_length=200)] = None,
    ) -> None:
        super().__init__(
            grant_type=grant_type,
            username=username,
            password=password,
            scope=scope,
            client_id=client_id,
            client_secret=client_secret,
        )


@router.post("/token", response_model=Token, summary="OAuth2 password grant")
async def issue_token(
    runtime: RuntimeDep, store: StoreDep, form: Annotated[PasswordGrantForm, Depends()]
) -> JSONResponse:
    if form.grant_type != "password":
        raise UnsupportedGrantType("only grant_type=password is supported")
    if runtime.signer is None:
        raise ServiceUnavailable("authentication is off on this deployment")
    async with store.sessions() as session:
        user = await repository.get_user_by_username(session=session, username=form.username)
    # Argon2 takes tens of milliseconds of CPU: off the event loop.
    if user is None:
        await asyncio.to_thread(dummy_verify)
        raise InvalidGrant("invalid username or password")
    valid = await asyncio.to_thread(verify_password, user.password_hash, form.password)
    if not valid or not user.is_active:
        raise InvalidGrant("invalid username or password")
    wanted = form.scopes or list(user.scopes)
    if not set(wanted) <= set(user.scopes):
        raise InvalidScope("the requested scope exceeds what this user holds")
    token, expires_in = runtime.signer.issue(
        subject=user.username, scopes=wanted, user_id=user.id, epoch=user.credential_epoch
    )
    return JSONResponse(
        {"access_token": token, "token_type": "bearer", "expires_in": expires_in},
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )
