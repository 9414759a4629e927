"""Every test run gets its own model store and data folder, set before BentoML is imported."""

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

_SCRATCH = tempfile.mkdtemp(prefix="model-packaging-tests-")
os.environ["BENTOML_HOME"] = os.path.join(_SCRATCH, "bentoml")
os.environ["EXPORT_DATA_DIR"] = os.path.join(_SCRATCH, "data")
os.environ["JOBS_DIRECTORY"] = os.path.join(_SCRATCH, "jobs")
os.environ["BENTOML_DO_NOT_TRACK"] = "True"
# Auth and rate limits are off by default in tests that exercise other behaviour; the auth
# tests (tests/integration/auth, tests/e2e/test_secured_server.py) switch them on explicitly.
os.environ["AUTH_ENABLED"] = "false"
os.environ["RATE_LIMIT_ENABLED"] = "false"
os.environ["AUTH_JWT_SECRET"] = "tests-only-secret-" + "s" * 32
os.environ.pop("REDIS_URL", None)
# The gateway's default prediction log for tests: an embedded SQLite file, migrated once below.
os.environ["DB_URL"] = f"sqlite+aiosqlite:///{os.path.join(_SCRATCH, 'gateway.sqlite3')}"


@pytest.fixture(scope="session", autouse=True)
def _remove_scratch() -> Iterator[None]:
    yield
    shutil.rmtree(_SCRATCH, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _migrated_default_database() -> None:
    """The DB_URL database at the head revision, as `make run` leaves it."""
    from alembic import command

    from db.migrate import alembic_config

    command.upgrade(alembic_config(os.environ["DB_URL"]), "head")


@pytest.fixture(scope="session")
def reference_models() -> dict[str, str]:
    """The three reference recipes, trained once per session; recipe name -> stored tag."""
    from tests.utils.recipes import train_reference

    return {
        name: train_reference(name, version="test-seed42")
        for name in ("fraud-xgb", "cancer-rf", "digits-mlp")
    }


SECOND_SEED = 7


@pytest.fixture(scope="session")
def second_versions(reference_models: dict[str, str]) -> dict[str, str]:
    """A second version of cancer-rf and digits-mlp, trained with another seed after the
    reference ones (so it is the newest); recipe name -> stored tag."""
    from tests.utils.recipes import train_reference

    return {
        name: train_reference(name, version=f"test-seed{SECOND_SEED}", seed=SECOND_SEED)
        for name in ("cancer-rf", "digits-mlp")
    }
