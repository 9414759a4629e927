"""Golden outputs compare exactly, unless a tolerance is given for a non-CPU device."""

import copy
import shutil
from pathlib import Path
from typing import Any

import bentoml
import pytest

from services.artifact.loader import load_verified
from services.errors import ArtifactMismatch
from services.settings import ServingSettings

pytestmark = pytest.mark.integration


def _perturbed(tag: str, tmp_path: Path, delta: float) -> tuple[Path, dict[str, Any]]:
    model = bentoml.models.get(tag)
    directory = tmp_path / "model"
    shutil.copytree(model.path, directory)
    metadata = copy.deepcopy(dict(model.info.metadata))
    metadata["golden_examples"]["outputs"][0][0] += delta
    return directory, metadata


def test_a_difference_within_the_tolerance_is_accepted(
    reference_models: dict[str, str], tmp_path: Path
) -> None:
    directory, metadata = _perturbed(reference_models["digits-mlp"], tmp_path, 1e-7)

    loaded = load_verified(
        directory, metadata, name="digits-mlp", version="gpu", golden_tolerance=1e-6
    )

    assert loaded.tag == "digits-mlp:gpu"


def test_a_difference_beyond_the_tolerance_is_refused(
    reference_models: dict[str, str], tmp_path: Path
) -> None:
    directory, metadata = _perturbed(reference_models["digits-mlp"], tmp_path, 1e-4)

    with pytest.raises(ArtifactMismatch, match="golden examples"):
        load_verified(directory, metadata, name="digits-mlp", version="gpu", golden_tolerance=1e-5)


def test_without_a_tolerance_the_comparison_is_exact(
    reference_models: dict[str, str], tmp_path: Path
) -> None:
    directory, metadata = _perturbed(reference_models["digits-mlp"], tmp_path, 1e-12)

    with pytest.raises(ArtifactMismatch, match="golden examples"):
        load_verified(directory, metadata, name="digits-mlp", version="cpu")


def test_the_tolerance_setting_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVING_GOLDEN_TOLERANCE", "0.5")

    with pytest.raises(ValueError, match="golden_tolerance"):
        ServingSettings()
