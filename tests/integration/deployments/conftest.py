"""Two versions of cancer-rf (the reference seed, then another seed: the newest), a version
with other features, and a freshly migrated database per test: SQLite and PostgreSQL."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.utils.databases import migrate, migrated_database, migrated_postgres, sqlite_url
from tests.utils.lifecycle import export_incompatible_version


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with migrated_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    with migrated_postgres() as url:
        yield url


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    url = sqlite_url(tmp_path / "gateway.sqlite3")
    migrate(url)
    return url


@pytest.fixture(scope="session")
def cancer_versions(
    reference_models: dict[str, str], second_versions: dict[str, str]
) -> tuple[str, str]:
    """(older, newer) tags of cancer-rf."""
    return reference_models["cancer-rf"], second_versions["cancer-rf"]


@pytest.fixture(scope="session")
def incompatible_version(
    cancer_versions: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> str:
    """cancer-rf:tiny-schema, with other features and classes than the recipe's versions."""
    return export_incompatible_version(
        tmp_path_factory.mktemp("incompatible"), name="cancer-rf", version="tiny-schema"
    )
