import uuid
from datetime import timedelta

import jwt
import pytest

from services.auth.credentials import (
    TokenSigner,
    api_key_prefix,
    digests_match,
    hash_password,
    new_api_key,
    token_scopes,
    verify_password,
)
from services.auth.settings import AuthSettings

SECRET = "s" * 40


def _signer() -> TokenSigner:
    return TokenSigner("HS256", SECRET, SECRET, "iss", "aud", timedelta(minutes=5))


def test_passwords_are_argon2id_and_verify() -> None:
    stored = hash_password("correct horse battery")

    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "wrong")
    assert not verify_password("not a hash", "anything")


def test_api_keys_are_random_and_stored_only_as_digest() -> None:
    first, second = new_api_key(), new_api_key()

    assert first.secret != second.secret
    assert api_key_prefix(first.secret) == first.prefix
    assert first.secret not in first.digest
    assert digests_match(first.secret, first.digest)
    assert not digests_match(second.secret, first.digest)


@pytest.mark.parametrize("value", ["", "mpk_short_x", "abc_0123456789ab_x", "eyJ.a.b"])
def test_non_keys_have_no_prefix(value: str) -> None:
    assert api_key_prefix(value) is None


def test_issued_tokens_carry_every_required_claim() -> None:
    user_id = uuid.uuid4()
    token, expires_in = _signer().issue(
        subject="alice", scopes=["models:read", "admin"], user_id=user_id, epoch="e1"
    )

    claims = _signer().verify(token)

    assert expires_in == 300
    assert {"sub", "scope", "iat", "exp", "iss", "aud", "jti", "uid", "epoch"} <= set(claims)
    assert (claims["uid"], claims["epoch"]) == (user_id.hex, "e1")
    assert token_scopes(claims) == {"models:read", "admin"}


def test_a_list_of_scopes_from_an_external_provider_is_understood() -> None:
    assert token_scopes({"scopes": ["a", "b"]}) == {"a", "b"}


def test_alg_none_is_refused() -> None:
    token = jwt.encode({"sub": "x"}, None, algorithm="none")

    with pytest.raises(jwt.InvalidTokenError):
        _signer().verify(token)


def test_production_refuses_a_missing_or_weak_secret() -> None:
    with pytest.raises(ValueError, match="required"):
        AuthSettings(jwt_secret=None).signing_secret(production=True)
    with pytest.raises(ValueError, match="at least 32"):
        AuthSettings(jwt_secret="short").signing_secret(production=True)
    assert AuthSettings(jwt_secret=SECRET).signing_secret(production=True) == SECRET
