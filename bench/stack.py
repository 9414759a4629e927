"""The project's full stack for one benchmark run: a throwaway database, an admin and a real JWT.

`throwaway_stack()` creates a PostgreSQL database named `bench_<UTC time>_<pid>` in the shared
server (BENCH_POSTGRES_DSN, default postgresql://postgres@127.0.0.1:5432/test, whose database
is only used to connect), migrates it with `python -m db.migrate upgrade`, creates an admin with
`python -m services.cli create-admin` (a random password), checks Redis answers, and drops the
database again however the run ends. Every project server of the run gets the database and a
per-run JWT secret. The token comes the public way, `POST /api/v1/auth/token` with the admin's
name and password, from the first running server of the run whose database is on (the token
route needs one); only a run without any such server signs it with the secret directly.
"""

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[1]
POSTGRES_DSN = os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
ADMIN = "bench-admin"


@dataclass
class Stack:
    """What the run created; `placeholders()` fills configurations' env and headers."""

    database: str
    database_url: str
    redis_url: str
    admin_password: str
    jwt_secret: str
    token: str | None = None

    def project_env(self) -> dict[str, str]:
        """What every project server of the run gets: this database and this JWT secret."""
        return {"DB_URL": self.database_url, "AUTH_JWT_SECRET": self.jwt_secret}

    def placeholders(self) -> dict[str, str]:
        values = {
            "database_url": self.database_url,
            "redis_url": self.redis_url,
            "jwt_secret": self.jwt_secret,
        }
        if self.token is not None:
            values["token"] = self.token
        return values

    def fetch_token(self, base_url: str) -> str | None:
        """A JWT for the admin from a server's own OAuth2 password grant; None if refused.

        A server with the prediction log off has no database session and answers 503.
        """
        form = urllib.parse.urlencode(
            {"grant_type": "password", "username": ADMIN, "password": self.admin_password}
        ).encode()
        request = urllib.request.Request(base_url + "/api/v1/auth/token", data=form, method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                token = json.load(response).get("access_token")
        except (urllib.error.URLError, OSError, ValueError):
            return None
        if isinstance(token, str):
            self.token = token
        return self.token

    def sign_token(self) -> str:
        """Fallback when no server of the run can issue one: HS256 with the run's secret."""
        import jwt

        now = int(time.time())
        claims = {
            "sub": ADMIN,
            "scope": "predictions:write",
            "iat": now,
            "exp": now + 86_400,
            "iss": "model-packaging",
            "aud": "model-packaging-api",
            "jti": secrets.token_hex(16),
        }
        self.token = jwt.encode(claims, self.jwt_secret, algorithm="HS256")
        return self.token


@contextlib.contextmanager
def throwaway_stack(log_dir: Path) -> Iterator[Stack]:
    """Create the database, migrate it, create the admin; drop the database on the way out."""
    dsn = urllib.parse.urlsplit(POSTGRES_DSN)
    name = f"bench_{datetime.now(UTC):%Y%m%d%H%M%S}_{os.getpid()}"
    database_url = urllib.parse.urlunsplit(("postgresql+asyncpg", dsn.netloc, f"/{name}", "", ""))
    _check_redis(REDIS_URL)
    asyncio.run(_execute(f'CREATE DATABASE "{name}"'))
    try:
        stack = Stack(
            database=name,
            database_url=database_url,
            redis_url=REDIS_URL,
            admin_password=secrets.token_urlsafe(24),
            jwt_secret=secrets.token_urlsafe(48),  # a per-run benchmark secret
        )
        env = {**os.environ, "DB_URL": database_url, "ADMIN_PASSWORD": stack.admin_password}
        with (log_dir / "stack.log").open("wb") as log:
            for command in (["db.migrate", "upgrade"], ["services.cli", "create-admin", ADMIN]):
                subprocess.run(
                    [sys.executable, "-m", *command],
                    cwd=REPO,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    check=True,
                )
        yield stack
    finally:
        asyncio.run(_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        print(f"dropped the throwaway database {name}", flush=True)


async def _execute(statement: str) -> None:
    # CREATE/DROP DATABASE take no parameters; the name is generated above, never user input.
    connection = await asyncpg.connect(POSTGRES_DSN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _check_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise SystemExit(
            f"Redis at {url} does not answer ({exc}); the full stack needs it"
        ) from None
    finally:
        client.close()
