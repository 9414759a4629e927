"""Migrations round-trip on SQLite and PostgreSQL, and match the models exactly."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from db.engine import create_engine
from db.migrate import current_revision, head_revision
from db.models import Base
from db.settings import DatabaseSettings
from tests.utils.databases import downgrade, migrate, pg_url, postgres_database, sqlite_url

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "empty.sqlite3")
        return
    with postgres_database() as name:
        yield pg_url(name)


def _tables(url: str) -> set[str]:
    async def read() -> set[str]:
        engine = create_engine(DatabaseSettings(url=url))
        try:
            async with engine.connect() as connection:
                return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _revision(url: str) -> str | None:
    async def read() -> str | None:
        engine = create_engine(DatabaseSettings(url=url))
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_upgrade_downgrade_upgrade_round_trips(empty_db: str) -> None:
    migrate(empty_db)
    assert "predictions" in _tables(empty_db)
    assert _revision(empty_db) == head_revision()

    downgrade(empty_db)
    assert "predictions" not in _tables(empty_db)
    assert _revision(empty_db) is None

    migrate(empty_db)
    assert _revision(empty_db) == head_revision()


def test_autogenerate_finds_no_difference_between_models_and_migrations(empty_db: str) -> None:
    migrate(empty_db)

    async def differences() -> list[object]:
        engine = create_engine(DatabaseSettings(url=empty_db))
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda c: compare_metadata(
                        MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
                    )
                )
        finally:
            await engine.dispose()

    assert asyncio.run(differences()) == []
