"""Each test gets a freshly migrated database: SQLite, and PostgreSQL on the shared server."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.utils.databases import migrate, migrated_postgres, sqlite_url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "gateway.sqlite3")
        migrate(url)
        yield url
        return
    with migrated_postgres() as url:
        yield url
