"""Real databases for tests: a fresh PostgreSQL database per use, or a SQLite file."""

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
from alembic import command

from db.migrate import alembic_config

PG_HOST = os.environ.get("TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("TEST_PG_USER", "postgres")
PG_ADMIN_DB = os.environ.get("TEST_PG_DATABASE", "test")


def pg_url(database: str, *, port: int = PG_PORT) -> str:
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{port}/{database}"


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty database on the shared server, dropped afterwards; yields its name."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database=PG_ADMIN_DB
    )
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def migrated_postgres() -> Iterator[str]:
    """A new database at the head revision, dropped afterwards; yields its URL."""
    with postgres_database() as name:
        url = pg_url(name)
        migrate(url)
        yield url


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def migrate(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


async def prediction_ids(url: str) -> set[str]:
    """Every prediction id stored in the PostgreSQL database at `url` (an asyncpg URL)."""
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        return {str(row["id"]) for row in await connection.fetch("SELECT id FROM predictions")}
    finally:
        await connection.close()


@contextmanager
def migrated_database(kind: str, directory: Path) -> Iterator[str]:
    """A freshly migrated database of `kind` ("sqlite": a file in `directory`; "postgresql": a
    new database on the shared server, dropped afterwards); yields its URL."""
    if kind == "sqlite":
        url = sqlite_url(directory / "gateway.sqlite3")
        migrate(url)
        yield url
        return
    with migrated_postgres() as url:
        yield url
