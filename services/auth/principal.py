"""Who is calling, carried the Starlette way: `scope["user"]` and `scope["auth"]`."""

from dataclasses import dataclass

from starlette.authentication import AuthCredentials, BaseUser, UnauthenticatedUser
from starlette.types import Scope

from services.auth.scopes import grants
from services.errors import Forbidden, Unauthorized


@dataclass(frozen=True)
class Principal(BaseUser):
    """An authenticated caller: a user by JWT, or a user's API key."""

    subject: str
    scopes: frozenset[str]
    method: str  # "jwt" or "api_key"
    key_prefix: str | None = None

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.subject

    @property
    def identity(self) -> str:
        return self.subject

    def may(self, scope: str) -> bool:
        """Whether this credential carries `scope` (or admin)."""
        return grants(self.scopes, scope)


def authenticate_scope(scope: Scope, caller: Principal | None) -> None:
    """Record the caller (or an anonymous user) in the ASGI scope, as Starlette's
    AuthenticationMiddleware does, so `request.user` and `request.auth` work downstream."""
    if caller is None:
        scope["user"], scope["auth"] = UnauthenticatedUser(), AuthCredentials()
    else:
        scope["user"], scope["auth"] = caller, AuthCredentials(sorted(caller.scopes))


def principal_of(scope: Scope) -> Principal | None:
    """The authenticated caller of a request, if any."""
    user = scope.get("user")
    return user if isinstance(user, Principal) else None


def authorize(caller: Principal | None, needed: str, *, auth_enabled: bool) -> None:
    """Every front door's scope check: 401 without a caller (when auth is on), 403 without
    the scope."""
    if caller is None:
        if auth_enabled:
            raise Unauthorized("authentication required")
        return
    if not caller.may(needed):
        raise Forbidden(
            f"this credential lacks the {needed!r} scope", details={"required_scope": needed}
        )
