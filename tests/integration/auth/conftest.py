"""A migrated PostgreSQL database and a live Redis for the auth and limits tests."""

import uuid
from collections.abc import Iterator

import pytest
import redis

from services.auth.settings import AuthSettings
from tests.utils.databases import migrated_postgres

SECRET = "test-secret-" + "x" * 40
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def auth_db() -> Iterator[str]:
    with migrated_postgres() as url:
        yield url


@pytest.fixture
def auth() -> AuthSettings:
    return AuthSettings(enabled=True, jwt_secret=SECRET)


@pytest.fixture
def unique() -> str:
    """A fresh name, so tests sharing the module database and Redis never collide."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="module", autouse=True)
def _redis_clean() -> Iterator[None]:
    yield
    client = redis.Redis.from_url(REDIS_URL)
    for pattern in ("ratelimit:v1:*test*", "inference:v1:*"):
        for key in client.scan_iter(pattern):
            client.delete(key)
