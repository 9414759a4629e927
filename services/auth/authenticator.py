"""Who is calling: a JWT (ours or an external OAuth2 provider's) or an API key.

Revocation: every credential of ours is checked against the account as it is now, on every
request. Our JWTs carry the user's id and credential epoch; any change to the account
(deactivation, scopes, password, deletion) replaces the epoch, so tokens issued before stop
working on the next request, on every worker (services.auth.epochs: one Redis GET, or one
indexed database read without Redis). API keys are read with their owner from the database on
every request. Tokens of an external RS256 provider have no local account: they live until they
expire, as the provider issued them. A token's signature is verified once per worker and its
claims kept until it expires (services.auth.token_cache); the account check is per request.
"""

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import jwt
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories import users as repository
from services.auth.credentials import (
    EPOCH_CLAIM,
    TokenSigner,
    api_key_prefix,
    digests_match,
    token_scopes,
)
from services.auth.epochs import GONE, AccountsUnavailable, CredentialEpochs
from services.auth.principal import Principal
from services.auth.scopes import grants
from services.auth.token_cache import VerifiedTokens

logger = logging.getLogger("services.auth")
T = TypeVar("T")


class AuthenticationFailed(Exception):
    """No valid credential; the reason is for the log, never for the client."""


class Authenticator:
    """Checks bearer tokens and API keys against the accounts behind them."""

    def __init__(
        self,
        signer: TokenSigner,
        sessions: async_sessionmaker[AsyncSession] | None,
        epochs: CredentialEpochs | None = None,
    ) -> None:
        self.signer = signer
        # Both None only where persistence is off (benchmarks; production refuses it): then
        # our tokens are checked by signature alone and API keys are refused.
        self.sessions = sessions
        self.epochs = epochs
        self.tokens = VerifiedTokens(signer.verify)

    async def authenticate(self, credential: str) -> Principal:
        if api_key_prefix(credential) is not None:
            return await self._api_key(credential)
        try:
            claims = self.tokens.verify(credential)
        except jwt.InvalidTokenError as exc:
            raise AuthenticationFailed(f"jwt: {type(exc).__name__}") from None
        if self.signer.issues_tokens and self.epochs is not None:
            await self._check_account(claims, self.epochs)
        return Principal(subject=str(claims["sub"]), scopes=token_scopes(claims), method="jwt")

    @staticmethod
    async def _check_account(claims: dict[str, Any], epochs: CredentialEpochs) -> None:
        """Refuse a token whose account changed (or went) since it was issued. Scopes change
        the epoch too, so an unchanged epoch means the token's scopes still hold."""
        try:
            user_id = uuid.UUID(hex=str(claims["uid"]))
            epoch = str(claims[EPOCH_CLAIM])
        except (KeyError, ValueError):
            raise AuthenticationFailed("jwt: not bound to an account") from None
        current = await epochs.current(user_id)
        if current == GONE:
            raise AuthenticationFailed("jwt: account deleted or deactivated")
        if current != epoch:
            raise AuthenticationFailed("jwt: account changed since the token was issued")

    async def _api_key(self, secret: str) -> Principal:
        prefix = api_key_prefix(secret)
        if self.sessions is None or prefix is None:
            raise AuthenticationFailed("api keys need the database")
        found = await self._read(
            lambda session: repository.find_api_key(session=session, prefix=prefix)
        )
        if found is None:
            raise AuthenticationFailed("api key: unknown prefix")
        key, user = found
        if not digests_match(secret, key.key_hash):
            raise AuthenticationFailed("api key: wrong secret")
        if key.revoked_at is not None or not user.is_active:
            raise AuthenticationFailed("api key: revoked or owner inactive")
        # A key keeps the scopes its owner still holds; admin implies every scope, so an admin's
        # narrow key (say models:read) keeps exactly that.
        held = frozenset(user.scopes)
        scopes = frozenset(scope for scope in key.scopes if grants(held, scope))
        return Principal(
            subject=user.username, scopes=scopes, method="api_key", key_prefix=key.prefix
        )

    async def _read(self, query: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run one read in a fresh session; any database failure is AccountsUnavailable."""
        assert self.sessions is not None
        try:
            async with self.sessions() as session:
                return await query(session)
        except Exception as exc:
            # SQLAlchemy's errors, and the driver's own (asyncpg raises CannotConnectNowError
            # while PostgreSQL starts): the credential can be neither accepted nor refused.
            logger.error("account lookup failed: %r", exc)
            raise AccountsUnavailable(type(exc).__name__) from exc
