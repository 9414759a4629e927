"""Verified tokens are verified once and kept until they expire; invalid ones never are."""

import uuid
from datetime import timedelta

import jwt
import pytest

from services.auth.credentials import TokenSigner
from services.auth.token_cache import VerifiedTokens

SIGNER = TokenSigner(
    algorithm="HS256",
    signing_key="k" * 64,
    verifying_key="k" * 64,
    issuer="issuer",
    audience="audience",
    ttl=timedelta(minutes=5),
)


class Counting:
    """The real verifier, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, token: str) -> dict[str, object]:
        self.calls += 1
        return SIGNER.verify(token)


def _token(subject: str = "alice") -> str:
    token, _ = SIGNER.issue(
        subject=subject, scopes=["models:read"], user_id=uuid.uuid4(), epoch="e"
    )
    return token


def test_a_token_is_verified_once_then_served_from_the_cache() -> None:
    verify = Counting()
    cache = VerifiedTokens(verify)
    token = _token()

    first = cache.verify(token)
    second = cache.verify(token)

    assert verify.calls == 1
    assert first == second == SIGNER.verify(token)


def test_a_cached_token_goes_back_to_the_verifier_at_its_expiry() -> None:
    now = [0.0]
    calls: list[str] = []

    def verify(token: str) -> dict[str, object]:  # PyJWT's rule: refused once exp <= now
        calls.append(token)
        if now[0] >= 100:
            raise jwt.ExpiredSignatureError("expired")
        return {"sub": "alice", "exp": 100}

    cache = VerifiedTokens(verify, clock=lambda: now[0])
    cache.verify("token")
    now[0] = 99.9
    cache.verify("token")
    assert len(calls) == 1

    now[0] = 100.0
    with pytest.raises(jwt.ExpiredSignatureError):
        cache.verify("token")

    assert len(calls) == 2
    assert len(cache) == 0


def test_invalid_tokens_are_refused_every_time_and_never_cached() -> None:
    verify = Counting()
    cache = VerifiedTokens(verify)
    forged = _token()[:-4] + "AAAA"

    for _ in range(3):
        with pytest.raises(jwt.InvalidTokenError):
            cache.verify(forged)

    assert verify.calls == 3
    assert len(cache) == 0


def test_the_least_recently_used_token_goes_when_the_cache_is_full() -> None:
    verify = Counting()
    cache = VerifiedTokens(verify, max_entries=2)
    a, b, c = _token("a"), _token("b"), _token("c")

    cache.verify(a)
    cache.verify(b)
    cache.verify(a)  # b is now the least recently used
    cache.verify(c)
    assert verify.calls == 3
    cache.verify(a)
    assert verify.calls == 3
    cache.verify(b)
    assert verify.calls == 4
    assert len(cache) == 2
