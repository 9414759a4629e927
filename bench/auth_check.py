"""What checking a credential against its account costs per request (the revocation check).

    .venv/bin/python -m bench.auth_check                 # PostgreSQL and SQLite, 3,000 calls each
    .venv/bin/python -m bench.auth_check --calls 10000 --concurrency 1,32

Calls `Authenticator.authenticate` in-process, the way the auth middleware does, for:
`jwt signature only` (what a token cost before: the check switched off), `jwt + redis epoch`
(signature plus one Redis GET of the user's credential epoch: what every request pays with
Redis configured), `jwt + db epoch` (the same read from the database: without Redis, or while
it is down) and `api key` (the key and its owner, read from the database on every request, as
before). Prints wall time per call (p50, p99, mean at each concurrency) and the process CPU time
per call, which is what the gateway worker spends. Redis: 127.0.0.1:6379.
The PostgreSQL database `model_packaging_bench_auth` on 127.0.0.1:5432 is created if missing and
migrated; the SQLite file lives in a temporary folder. It prints numbers; it never fails on them.
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

from db.engine import create_engine, session_factory
from db.repositories import users as repository
from db.settings import DatabaseSettings
from services.auth.accounts import create_user
from services.auth.authenticator import Authenticator
from services.auth.credentials import TokenSigner, new_api_key
from services.auth.epochs import CredentialEpochs
from services.redis_client import RedisGuard, RedisSettings

REPO = Path(__file__).resolve().parents[1]
PG_DATABASE = "model_packaging_bench_auth"
PG_URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_DATABASE}"
SECRET = "bench-only-secret-" + "b" * 32  # a benchmark credential, never a deployment's
REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class Row:
    database: str
    credential: str
    concurrency: int
    p50_us: float
    p99_us: float
    mean_us: float
    cpu_us: float


async def _prepare_postgres() -> None:
    admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="test")
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", PG_DATABASE)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    finally:
        await admin.close()


def _migrate(url: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "db.migrate", "upgrade"],
        check=True,
        env={**os.environ, "DB_URL": url},
        cwd=REPO,
    )


async def _measure(
    name: str, call: Callable[[], Awaitable[object]], calls: int, concurrency: int
) -> tuple[list[float], float]:
    """Per-call wall times (seconds) and CPU seconds per call, `concurrency` callers at once."""
    for _ in range(min(200, calls)):  # warm the pool, the statement caches and the JIT-less path
        await call()
    durations: list[float] = []
    per_worker = max(1, calls // concurrency)

    async def worker() -> None:
        for _ in range(per_worker):
            started = time.perf_counter()
            await call()
            durations.append(time.perf_counter() - started)

    cpu_before = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu = (time.process_time() - cpu_before) / len(durations)
    return durations, cpu


async def _run_database(label: str, url: str, calls: int, levels: Sequence[int]) -> list[Row]:
    engine = create_engine(DatabaseSettings(url=url, pool_size=40, max_overflow=0))
    sessions = session_factory(engine)
    try:
        user = await create_user(
            sessions,
            username=f"bench-{uuid.uuid4().hex[:8]}",
            password="a bench passphrase",
            scopes=["admin"],
        )
        generated = new_api_key()
        async with sessions() as session, session.begin():
            await repository.create_api_key(
                session=session,
                user_id=user.id,
                name="bench",
                prefix=generated.prefix,
                key_hash=generated.digest,
                scopes=["admin"],
                now=datetime.now(UTC),
            )
        signer = TokenSigner(
            "HS256", SECRET, SECRET, "model-packaging", "model-packaging-api", timedelta(hours=1)
        )
        token, _ = signer.issue(
            subject=user.username, scopes=["admin"], user_id=user.id, epoch=user.credential_epoch
        )
        shared = RedisGuard(RedisSettings(url=REDIS_URL))
        local = RedisGuard(RedisSettings())
        redis_epoch = Authenticator(signer, sessions, CredentialEpochs(sessions, shared, ttl_s=60))
        db_epoch = Authenticator(signer, sessions, CredentialEpochs(sessions, local, ttl_s=60))
        signature_only = Authenticator(signer, None)
        cases: dict[str, Callable[[], Awaitable[object]]] = {
            "jwt signature only": lambda: signature_only.authenticate(token),
            "jwt + redis epoch": lambda: redis_epoch.authenticate(token),
            "jwt + db epoch": lambda: db_epoch.authenticate(token),
            "api key": lambda: db_epoch.authenticate(generated.secret),
        }
        rows = []
        for concurrency in levels:
            for name, call in cases.items():
                durations, cpu = await _measure(name, call, calls, concurrency)
                ordered = sorted(durations)
                rows.append(
                    Row(
                        database=label,
                        credential=name,
                        concurrency=concurrency,
                        p50_us=ordered[len(ordered) // 2] * 1e6,
                        p99_us=ordered[int(len(ordered) * 0.99) - 1] * 1e6,
                        mean_us=statistics.fmean(durations) * 1e6,
                        cpu_us=cpu * 1e6,
                    )
                )
        await shared.close()
        return rows
    finally:
        await engine.dispose()


def _print(rows: list[Row]) -> None:
    header = f"{'database':<11}{'credential':<20}{'conc':>5}{'p50 us':>10}{'p99 us':>10}"
    header += f"{'mean us':>10}{'CPU us/call':>13}"
    print(header)
    for row in rows:
        print(
            f"{row.database:<11}{row.credential:<20}{row.concurrency:>5}{row.p50_us:>10.0f}"
            f"{row.p99_us:>10.0f}{row.mean_us:>10.0f}{row.cpu_us:>13.0f}"
        )
    base = {(r.database, r.concurrency): r for r in rows if r.credential == "jwt signature only"}
    print("\nthe revocation check (minus signature only), CPU per call:")
    for row in rows:
        if row.credential.startswith("jwt + "):
            extra = replace(row, cpu_us=row.cpu_us - base[(row.database, row.concurrency)].cpu_us)
            print(
                f"  {row.credential} ({row.database}) at concurrency {row.concurrency}:"
                f" {extra.cpu_us:.0f} us"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls per cell")
    parser.add_argument("--concurrency", default="1,32", help="comma-separated levels")
    parser.add_argument("--databases", default="postgresql,sqlite")
    args = parser.parse_args(argv)
    levels = [int(part) for part in args.concurrency.split(",")]
    rows: list[Row] = []
    wanted = args.databases.split(",")
    if "postgresql" in wanted:
        asyncio.run(_prepare_postgres())
        _migrate(PG_URL)
        rows += asyncio.run(_run_database("postgresql", PG_URL, args.calls, levels))
    if "sqlite" in wanted:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{folder}/bench.sqlite3"
            _migrate(url)
            rows += asyncio.run(_run_database("sqlite", url, args.calls, levels))
    _print(rows)
    print(f"\nload average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
