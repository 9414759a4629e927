"""Each test gets a freshly migrated database: SQLite, and PostgreSQL on the shared server."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.utils.databases import migrated_database


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with migrated_database(request.param, tmp_path) as url:
        yield url
