"""Who is calling: a JWT (ours or an external OAuth2 provider's) or an API key."""

import logging

import jwt
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories import users as repository
from services.auth.credentials import TokenSigner, api_key_prefix, digests_match, token_scopes
from services.auth.principal import Principal

logger = logging.getLogger("services.auth")


class AuthenticationFailed(Exception):
    """No valid credential; the reason is for the log, never for the client."""


class Authenticator:
    """Checks bearer tokens and API keys; API key revocation is read from the database."""

    def __init__(
        self, signer: TokenSigner, sessions: async_sessionmaker[AsyncSession] | None
    ) -> None:
        self.signer = signer
        self.sessions = sessions

    async def authenticate(self, credential: str) -> Principal:
        if api_key_prefix(credential) is not None:
            return await self._api_key(credential)
        try:
            claims = self.signer.verify(credential)
        except jwt.InvalidTokenError as exc:
            raise AuthenticationFailed(f"jwt: {type(exc).__name__}") from None
        return Principal(subject=str(claims["sub"]), scopes=token_scopes(claims), method="jwt")

    async def _api_key(self, secret: str) -> Principal:
        prefix = api_key_prefix(secret)
        if self.sessions is None or prefix is None:
            raise AuthenticationFailed("api keys need the database")
        async with self.sessions() as session:
            found = await repository.find_api_key(session=session, prefix=prefix)
        if found is None:
            raise AuthenticationFailed("api key: unknown prefix")
        key, user = found
        if not digests_match(secret, key.key_hash):
            raise AuthenticationFailed("api key: wrong secret")
        if key.revoked_at is not None or not user.is_active:
            raise AuthenticationFailed("api key: revoked or owner inactive")
        scopes = frozenset(key.scopes) & frozenset(user.scopes)
        return Principal(
            subject=user.username, scopes=scopes, method="api_key", key_prefix=key.prefix
        )
