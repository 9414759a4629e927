"""The project's full stack for one benchmark run: a throwaway database, an admin and a real JWT.

`throwaway_stack()` creates a PostgreSQL database named `bench_<UTC time>_<pid>` in the shared
server (BENCH_POSTGRES_DSN, default postgresql://postgres@127.0.0.1:5432/test, whose database
is only used to connect), migrates it with `python -m db.migrate upgrade`, creates an admin with
`python -m services.cli create-admin` (a random password), checks Redis answers, and drops the
database again however the run ends. The token comes the public way: `POST /api/v1/auth/token`
on a running server of the run, with the admin's name and password.
"""

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
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

    def placeholders(self) -> dict[str, str]:
        values = {
            "database_url": self.database_url,
            "redis_url": self.redis_url,
            "jwt_secret": self.jwt_secret,
        }
        if self.token is not None:
            values["token"] = self.token
        return values

    def fetch_token(self, base_url: str) -> str:
        """A JWT for the admin from the server's own OAuth2 password grant."""
        form = urllib.parse.urlencode(
            {"grant_type": "password", "username": ADMIN, "password": self.admin_password}
        ).encode()
        request = urllib.request.Request(base_url + "/api/v1/auth/token", data=form, method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        with urllib.request.urlopen(request, timeout=30) as response:
            token = json.load(response)["access_token"]
        if not isinstance(token, str):
            raise RuntimeError("the token endpoint answered without an access_token")
        self.token = token
        return token


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
