"""Every test run gets its own model store and data folder, set before BentoML is imported."""

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

_SCRATCH = tempfile.mkdtemp(prefix="model-packaging-tests-")
os.environ["BENTOML_HOME"] = os.path.join(_SCRATCH, "bentoml")
os.environ["EXPORT_DATA_DIR"] = os.path.join(_SCRATCH, "data")
os.environ["BENTOML_DO_NOT_TRACK"] = "True"


@pytest.fixture(scope="session", autouse=True)
def _remove_scratch() -> Iterator[None]:
    yield
    shutil.rmtree(_SCRATCH, ignore_errors=True)


@pytest.fixture(scope="session")
def reference_models() -> dict[str, str]:
    """The three reference recipes, trained once per session; recipe name -> stored tag."""
    from tests.utils.recipes import train_reference

    return {
        name: train_reference(name, version="test-seed42")
        for name in ("fraud-xgb", "cancer-rf", "digits-mlp")
    }
