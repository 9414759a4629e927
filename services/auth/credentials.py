"""Passwords (Argon2id), API keys (random, stored as SHA-256 with a lookup prefix) and JWTs."""

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

API_KEY_MARK = "mpk"
EPOCH_CLAIM = "epoch"
_HASHER = PasswordHasher()  # Argon2id with the library's recommended parameters


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def dummy_verify() -> None:
    """Spend the time a real check takes, so unknown usernames are not told apart by timing."""
    verify_password(_DUMMY_HASH, "not the password")


_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class NewApiKey:
    """A freshly generated key: `secret` is shown once, only `prefix` and `digest` are stored."""

    secret: str
    prefix: str
    digest: str


def new_credential_epoch() -> str:
    """A fresh random epoch for a user: tokens issued under any other one stop working."""
    return secrets.token_hex(8)


def new_api_key() -> NewApiKey:
    prefix = secrets.token_hex(6)
    secret = f"{API_KEY_MARK}_{prefix}_{secrets.token_urlsafe(32)}"
    return NewApiKey(secret=secret, prefix=prefix, digest=api_key_digest(secret))


def api_key_digest(secret: str) -> str:
    # API keys carry 256 random bits, so a fast hash is safe here (unlike passwords).
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def api_key_prefix(secret: str) -> str | None:
    """The lookup prefix of something shaped like our API key, else None."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_MARK or len(parts[1]) != 12:
        return None
    return parts[1]


def digests_match(secret: str, digest: str) -> bool:
    return hmac.compare_digest(api_key_digest(secret), digest)


@dataclass(frozen=True)
class TokenSigner:
    """Issues and verifies JWTs for one algorithm, key, issuer and audience."""

    algorithm: str
    signing_key: str | None
    verifying_key: str
    issuer: str
    audience: str
    ttl: timedelta

    @property
    def issues_tokens(self) -> bool:
        """Whether tokens are ours (HS256, local users) rather than an external provider's."""
        return self.signing_key is not None

    def issue(
        self, *, subject: str, scopes: list[str], user_id: uuid.UUID, epoch: str
    ) -> tuple[str, int]:
        """A signed access token and its lifetime in seconds (HS256 deployments only).

        `uid` and `epoch` bind it to the account as it is now: any later change to the account
        replaces the epoch, and the token stops working on the next request.
        """
        if self.signing_key is None:
            raise RuntimeError("this deployment verifies tokens but does not issue them")
        now = datetime.now(UTC)
        claims = {
            "sub": subject,
            "uid": user_id.hex,
            EPOCH_CLAIM: epoch,
            "scope": " ".join(scopes),
            "iat": now,
            "exp": now + self.ttl,
            "iss": self.issuer,
            "aud": self.audience,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self.signing_key, algorithm=self.algorithm)
        return token, int(self.ttl.total_seconds())

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid token; jwt.InvalidTokenError otherwise.

        Only the configured algorithm is accepted, so `alg: none` and algorithm confusion fail.
        """
        claims: dict[str, Any] = jwt.decode(
            token,
            self.verifying_key,
            algorithms=[self.algorithm],
            audience=self.audience,
            issuer=self.issuer,
            options={"require": ["sub", "exp", "iat", "iss", "aud", "jti"]},
        )
        return claims


def token_scopes(claims: dict[str, Any]) -> frozenset[str]:
    """Scopes from the RFC 8693 `scope` string, or a `scopes` list some providers use."""
    raw = claims.get("scope", claims.get("scopes", ""))
    values = raw.split() if isinstance(raw, str) else list(raw)
    return frozenset(str(value) for value in values)
