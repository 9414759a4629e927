"""POST /auth/token: the OAuth2 password grant (RFC 6749 section 4.3), form-encoded."""

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import JSONResponse

from db.repositories import users as repository
from services.auth.credentials import dummy_verify, verify_password
from services.errors import AppError
from services.gateway.dependencies import RuntimeDep, StoreDep
from services.gateway.schemas import ERROR_RESPONSES, Token

router = APIRouter(prefix="/auth", tags=["auth"], responses=ERROR_RESPONSES)


class InvalidGrant(AppError):
    """RFC 6749 5.2: bad credentials in a password grant are a 400 invalid_grant."""

    status_code = 400
    error_code = "invalid_grant"


class UnsupportedGrantType(AppError):
    status_code = 400
    error_code = "unsupported_grant_type"


class InvalidScope(AppError):
    status_code = 400
    error_code = "invalid_scope"


@router.post("/token", response_model=Token, summary="OAuth2 password grant")
async def issue_token(
    runtime: RuntimeDep,
    store: StoreDep,
    grant_type: Annotated[str, Form()],
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    scope: Annotated[str, Form(max_length=200)] = "",
) -> JSONResponse:
    if grant_type != "password":
        raise UnsupportedGrantType("only grant_type=password is supported")
    async with store.sessions() as session:
        user = await repository.get_user_by_username(session=session, username=username)
    if user is None:
        dummy_verify()
        raise InvalidGrant("invalid username or password")
    if not verify_password(user.password_hash, password) or not user.is_active:
        raise InvalidGrant("invalid username or password")
    wanted = scope.split() if scope else list(user.scopes)
    if not set(wanted) <= set(user.scopes):
        raise InvalidScope("the requested scope exceeds what this user holds")
    token, expires_in = runtime.signer.issue(subject=user.username, scopes=wanted)
    return JSONResponse(
        {"access_token": token, "token_type": "bearer", "expires_in": expires_in},
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )
