"""What persistence (issue 4) and auth + rate limiting (issue 5) cost, measured like bench.load.

    .venv/bin/python -m bench.overhead                 # fraud-xgb and cancer-rf at c=32
    .venv/bin/python -m bench.overhead --rounds 1 --duration 4

Three servers side by side, taking turns cell by cell (bench/load.py explains the method):
`baseline` (the default gateway, prediction log, auth and limits off), `log-postgres` (the same
with every prediction committed to PostgreSQL before its 201, group commit on) and
`auth-limits` (the same as baseline plus JWT authentication on every request and the Redis rate
limiter, with limits high enough that nothing is refused: the cost of checking is measured).
The PostgreSQL database `model_packaging_bench` on 127.0.0.1:5432 is created if missing and
migrated first; its predictions table is emptied before each run.
"""

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Sequence

import asyncpg
import jwt

from bench import load
from bench.load import Configuration, Ratio

PG_DATABASE = "model_packaging_bench"
PG_URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_DATABASE}"
SECRET = "bench-only-secret-" + "b" * 32  # a benchmark credential, never a deployment's
MODELS = ("fraud-xgb", "cancer-rf")


def _token() -> str:
    now = int(time.time())
    claims = {
        "sub": "bench",
        "scope": "predictions:write",
        "iat": now,
        "exp": now + 86_400,
        "iss": "model-packaging",
        "aud": "model-packaging-api",
        "jti": "bench",
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


CONFIGURATIONS = (
    Configuration(
        "baseline", {}, description="default gateway; log, auth and limits off", default=False
    ),
    Configuration(
        "log-postgres",
        {"DB_PERSIST_PREDICTIONS": "true", "DB_URL": PG_URL},
        description="baseline + every prediction committed to PostgreSQL before its 201",
        default=False,
    ),
    Configuration(
        "auth-limits",
        {
            "AUTH_ENABLED": "true",
            "AUTH_JWT_SECRET": SECRET,
            "RATE_LIMIT_ENABLED": "true",
            "RATE_LIMIT_INFERENCE_RATE": "1000000",
            "RATE_LIMIT_INFERENCE_BURST": "1000000",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
        },
        headers={"Authorization": f"Bearer {_token()}"},
        description="baseline + JWT auth and Redis rate limiting on every request",
        default=False,
    ),
)
TARGETS = (
    Ratio("persistence costs at most 15%", "log-postgres", "baseline", MODELS, (32,), 0.85),
    Ratio("auth and limits cost at most 10%", "auth-limits", "baseline", MODELS, (32,), 0.90),
)


async def _prepare_database() -> None:
    admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="test")
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", PG_DATABASE)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    finally:
        await admin.close()
    subprocess.run(
        [sys.executable, "-m", "db.migrate", "upgrade"],
        check=True,
        env={**os.environ, "DB_URL": PG_URL},
        cwd=load.REPO,
    )
    bench_db = await asyncpg.connect(host="127.0.0.1", user="postgres", database=PG_DATABASE)
    try:
        await bench_db.execute("TRUNCATE predictions")
    finally:
        await bench_db.close()


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(_prepare_database())
    load.CONFIGURATIONS = (*load.CONFIGURATIONS, *CONFIGURATIONS)
    load.TARGETS = TARGETS
    names = ",".join(config.name for config in CONFIGURATIONS)
    defaults = ["--configs", names, "--models", ",".join(MODELS), "--concurrency", "32"]
    return load.main([*defaults, *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
