"""POST /auth/token: the OAuth2 password grant (RFC 6749 section 4.3), form-encoded.

Its errors take RFC 6749 section 5.2's shape, `{"error": "invalid_grant", "error_description":
...}` with status 400, as OAuth2 clients expect; every other route keeps the envelope (and this
one does too for what is not the token request's fault: 413, 429, 5xx).
"""

import asyncio
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordRequestForm
from starlette.exceptions import HTTPException

from db.repositories import users as repository
from services.auth.credentials import dummy_verify, verify_password
from services.errors import (
    BadRequest,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    ServiceUnavailable,
    UnsupportedGrantType,
)
from services.gateway.dependencies import RuntimeDep, StoreDep
from services.gateway.fields import Text
from services.gateway.schemas import ERROR_RESPONSES, OAuthErrorResponse, Token
from services.http.envelope import ErrorEnvelope

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
FORM_HINT = (
    "send a form-encoded body (Content-Type: application/x-www-form-urlencoded), e.g. "
    "grant_type=password&username=alice&password=..."
)
OAUTH_ERRORS = (InvalidRequest, InvalidGrant, InvalidScope, UnsupportedGrantType)


class OAuthErrorRoute(APIRoute):
    """A route whose request errors are answered in RFC 6749 section 5.2's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return oauth_error(InvalidRequest(_describe(exc, request)))
            except HTTPException as exc:
                if exc.status_code != 400:  # FastAPI's "error parsing the body"
                    raise
                return oauth_error(InvalidRequest(f"The body could not be read: {FORM_HINT}."))
            except OAUTH_ERRORS as exc:
                return oauth_error(exc)

        return answer


def oauth_error(exc: BadRequest) -> JSONResponse:
    """An RFC 6749 section 5.2 error response."""
    return JSONResponse(
        {"error": exc.error_code, "error_description": exc.message},
        status_code=exc.status_code,
        headers=NO_STORE,
    )


def _describe(exc: RequestValidationError, request: Request) -> str:
    content_type = request.headers.get("content-type", "")
    if "json" in content_type.lower():
        return f"The token endpoint does not take JSON: {FORM_HINT}."
    problems = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ()) if part != "body"]
        name = location[0] if location else "body"
        problems.append(f"{name}: {str(error.get('msg', 'invalid')).removeprefix('Value error, ')}")
    return "Invalid token request (" + "; ".join(problems) + f"); {FORM_HINT}."


TOKEN_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": OAuthErrorResponse, "description": "RFC 6749 section 5.2 error"},
    # Not the token request's fault, so in the envelope: 413 body too large, 429 rate limited.
    "4XX": {"model": ErrorEnvelope, "description": "Body too large (413) or rate limited (429)"},
    **{status: ERROR_RESPONSES[status] for status in (500, 503)},
}
router = APIRouter(
    prefix="/auth", tags=["auth"], responses=TOKEN_RESPONSES, route_class=OAuthErrorRoute
)


class PasswordGrantForm(OAuth2PasswordRequestForm):
    """FastAPI's password-grant form, with `grant_type` required and checked by the route, so
    a wrong one gets RFC 6749's `unsupported_grant_type` rather than a generic error."""

    def __init__(
        self,
        *,
        grant_type: Annotated[Text, Form(max_length=64)],
        username: Annotated[Text, Form(max_length=64)],
        password: Annotated[Text, Form(max_length=256)],
        scope: Annotated[Text, Form(max_length=200)] = "",
        client_id: Annotated[Text | None, Form(max_length=200)] = None,
        client_secret: Annotated[Text | None, Form(max_length=200)] = None,
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
        headers=NO_STORE,
    )
