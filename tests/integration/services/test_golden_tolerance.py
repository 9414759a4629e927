"""Golden outputs compare exactly on the kernels that recorded them, within the configured
tolerance on others (another device, CPU instruction set or framework build)."""

import copy
import logging
import shutil
from pathlib import Path
from typing import Any

import bentoml
import pytest

from services.artifact.loader import load_verified
from services.errors import ArtifactMismatch
from services.settings import ServingSettings

pytestmark = pytest.mark.integration
ELSEWHERE = "torch 2.11.0+cu130 NVIDIA H200"


def _perturbed(
    tag: str, tmp_path: Path, delta: float, *, kernels: str | None = None
) -> tuple[Path, dict[str, Any]]:
    model = bentoml.models.get(tag)
    directory = tmp_path / "model"
    shutil.copytree(model.path, directory)
    metadata = copy.deepcopy(dict(model.info.metadata))
    metadata["golden_examples"]["outputs"][0][0] += delta
    if kernels is not None:
        metadata["kernels"] = kernels
    return directory, metadata


def test_recorded_elsewhere_a_difference_within_the_tolerance_is_accepted(
    reference_models: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory, metadata = _perturbed(
        reference_models["digits-mlp"], tmp_path, 1e-7, kernels=ELSEWHERE
    )

    with caplog.at_level(logging.WARNING, logger="services.artifact"):
        loaded = load_verified(
            directory, metadata, name="digits-mlp", version="gpu", golden_tolerance=1e-6
        )

    assert loaded.tag == "digits-mlp:gpu"
    assert f"recorded with {ELSEWHERE}" in caplog.text


def test_recorded_elsewhere_a_difference_beyond_the_tolerance_is_refused(
    reference_models: dict[str, str], tmp_path: Path
) -> None:
    directory, metadata = _perturbed(
        reference_models["digits-mlp"], tmp_path, 1e-4, kernels=ELSEWHERE
    )

    with pytest.raises(ArtifactMismatch, match="golden examples"):
        load_verified(directory, metadata, name="digits-mlp", version="gpu", golden_tolerance=1e-5)


def test_on_the_recording_kernels_the_comparison_is_exact_whatever_the_tolerance(
    reference_models: dict[str, str], tmp_path: Path
) -> None:
    directory, metadata = _perturbed(reference_models["digits-mlp"], tmp_path, 1e-12)

    with pytest.raises(ArtifactMismatch, match="golden examples"):
        load_verified(directory, metadata, name="digits-mlp", version="cpu", golden_tolerance=1e-5)


def test_tree_models_compare_exactly_whatever_the_tolerance(
    reference_models: dict[str, str], tmp_path: Path
) -> None:
    directory, metadata = _perturbed(reference_models["cancer-rf"], tmp_path, 1e-12)

    assert metadata.get("kernels") is None
    with pytest.raises(ArtifactMismatch, match="golden examples"):
        load_verified(directory, metadata, name="cancer-rf", version="x", golden_tolerance=1e-5)


def test_without_a_tolerance_the_comparison_is_exact(
    reference_models: dict[str, str], tmp_path: Path
) -> None:
    directory, metadata = _perturbed(
        reference_models["digits-mlp"], tmp_path, 1e-12, kernels=ELSEWHERE
    )

    with pytest.raises(ArtifactMismatch, match="golden examples"):
        load_verified(directory, metadata, name="digits-mlp", version="cpu")


def test_the_tolerance_setting_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVING_GOLDEN_TOLERANCE", "0.5")

    with pytest.raises(ValueError, match="golden_tolerance"):
        ServingSettings()


def test_recorded_elsewhere_an_execution_that_does_not_hold_here_is_replaced(
    reference_models: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A GPU or another CPU may block batch sizes differently: the loader serves the shapes
    that agree here with the largest that holds, and says so."""
    directory, metadata = _perturbed(
        reference_models["digits-mlp"], tmp_path, 0.0, kernels=ELSEWHERE
    )
    holds_here = tuple(metadata["execution"]["shapes"])
    metadata["execution"] = {"mode": "padded", "shapes": [1, *holds_here]}

    with caplog.at_level(logging.WARNING, logger="services.artifact"):
        loaded = load_verified(
            directory, metadata, name="digits-mlp", version="gpu", golden_tolerance=1e-6
        )

    assert (loaded.execution.mode, loaded.execution.shapes) == ("padded", holds_here)
    assert "does not hold on these kernels; serving padded to" in caplog.text


def test_on_the_recording_kernels_an_execution_that_does_not_hold_is_refused(
    reference_models: dict[str, str], tmp_path: Path
) -> None:
    directory, metadata = _perturbed(reference_models["digits-mlp"], tmp_path, 0.0)
    metadata["execution"]["shapes"] = [1, *metadata["execution"]["shapes"]]

    with pytest.raises(ArtifactMismatch, match="recorded execution"):
        load_verified(directory, metadata, name="digits-mlp", version="cpu", golden_tolerance=1e-5)
