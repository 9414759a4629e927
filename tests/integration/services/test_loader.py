"""A runner refuses a model whose files, metadata or golden outputs no longer match its export."""

import copy
import shutil
from pathlib import Path
from typing import Any

import bentoml
import pytest

from services.artifact.loader import load_verified
from services.errors import ArtifactMismatch, InvalidFeatureSchema

pytestmark = pytest.mark.integration


def _copy(tag: str, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    model = bentoml.models.get(tag)
    directory = tmp_path / "model"
    shutil.copytree(model.path, directory)
    return directory, copy.deepcopy(dict(model.info.metadata))


def test_intact_copy_loads(reference_models: dict[str, str], tmp_path: Path) -> None:
    directory, metadata = _copy(reference_models["cancer-rf"], tmp_path)

    loaded = load_verified(directory, metadata, name="cancer-rf", version="copy")

    assert loaded.tag == "cancer-rf:copy"


def test_tampered_artifact_is_refused_before_it_is_loaded(
    reference_models: dict[str, str], tmp_path: Path
) -> None:
    directory, metadata = _copy(reference_models["cancer-rf"], tmp_path)
    with (directory / "model.joblib").open("ab") as stream:
        stream.write(b"\0")

    with pytest.raises(ArtifactMismatch, match="does not match its SHA-256"):
        load_verified(directory, metadata, name="cancer-rf", version="copy")


def test_missing_artifact_is_refused(reference_models: dict[str, str], tmp_path: Path) -> None:
    directory, metadata = _copy(reference_models["fraud-xgb"], tmp_path)
    (directory / "model.json").unlink()

    with pytest.raises(ArtifactMismatch, match="missing"):
        load_verified(directory, metadata, name="fraud-xgb", version="copy")


def test_changed_golden_output_is_refused(reference_models: dict[str, str], tmp_path: Path) -> None:
    directory, metadata = _copy(reference_models["digits-mlp"], tmp_path)
    metadata["golden_examples"]["outputs"][3][0] += 1e-12

    with pytest.raises(ArtifactMismatch, match="golden examples"):
        load_verified(directory, metadata, name="digits-mlp", version="copy")


def test_metadata_outside_the_contract_is_refused(
    reference_models: dict[str, str], tmp_path: Path
) -> None:
    directory, metadata = _copy(reference_models["fraud-xgb"], tmp_path)
    del metadata["feature_schema"]

    with pytest.raises(InvalidFeatureSchema, match="artifact contract"):
        load_verified(directory, metadata, name="fraud-xgb", version="copy")
