"""A runner refuses a model whose files, metadata, execution record or golden outputs no longer
match its export; what it serves gives a row identical outputs in any batch, batched."""

import copy
import logging
import math
import shutil
from pathlib import Path
from typing import Any

import bentoml
import numpy as np
import pytest

from services.artifact.loader import load_from_store, load_verified
from services.errors import ArtifactMismatch, InvalidFeatureSchema
from tests.utils.factories import legacy_torchscript_artifact

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


RECIPES = ("fraud-xgb", "cancer-rf", "digits-mlp")
SIZES = (1, 2, 5, 8, 13, 16, 31, 64, 100, 128, 200, 256, 300, 512, 700)


def _neighbours(x: np.ndarray[Any, Any], count: int, rng: np.random.Generator) -> Any:
    """Rows unlike the probe: golden rows drawn at random with noise on every feature."""
    rows = x[rng.integers(0, len(x), count)]
    noise = rng.normal(0.0, 1.0, rows.shape) * (x.std(axis=0) + 1.0)
    return (rows + noise).astype(np.float32)


@pytest.mark.parametrize("recipe", RECIPES)
def test_a_row_gives_identical_outputs_wherever_it_lands(
    recipe: str, reference_models: dict[str, str]
) -> None:
    model = load_from_store(reference_models[recipe])
    x = model.metadata.feature_schema.encode_rows(model.metadata.golden_examples.inputs)
    rng = np.random.default_rng(7)

    alone = np.concatenate([model.predictor.predict_proba(x[i : i + 1]) for i in range(len(x))])

    for size in SIZES:
        batch = _neighbours(x, size, rng)
        rows = rng.permutation(len(x))[: min(size, len(x))]
        positions = rng.permutation(size)[: len(rows)]
        batch[positions] = x[rows]
        outputs = model.predictor.predict_proba(batch)
        assert np.array_equal(outputs[positions], alone[rows]), (recipe, size)


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_reference_model_runs_batched_never_row_by_row(
    recipe: str, reference_models: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = load_from_store(reference_models[recipe])
    inner = model.predictor.inner  # type: ignore[attr-defined]
    calls: list[int] = []
    predict = inner.predict_proba

    def counted(x: np.ndarray[Any, Any]) -> Any:
        calls.append(len(x))
        return predict(x)

    monkeypatch.setattr(inner, "predict_proba", counted)
    model.predictor.predict_proba(
        _neighbours(
            np.ones((4, model.metadata.feature_schema.width)), 100, np.random.default_rng(0)
        )
    )

    # Padded: chunks of the largest shape, the last padded up; batched: one call.
    largest = max(model.execution.shapes, default=100)
    assert model.execution.mode in ("batched", "padded")
    assert len(calls) == math.ceil(100 / largest)
    assert min(calls) > 1


class _BatchDependent:
    """A predictor whose every output moves with the number of rows in its call."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def predict_proba(self, x: Any) -> Any:
        return self._inner.predict_proba(x) + len(x) * 1e-4


@pytest.fixture
def batch_dependent(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyTorch models load as batch-size dependent, whatever this CPU's kernels do: which shapes
    the real digits-mlp keeps invariant differs between CPUs (AVX2 vs AVX-512), and a test of
    the refusal must not depend on the machine it runs on."""
    from services.artifact.adapters import torch_adapter

    load = torch_adapter.ADAPTER.load
    monkeypatch.setattr(torch_adapter.ADAPTER, "load", lambda path: _BatchDependent(load(path)))


@pytest.mark.parametrize(
    ("execution", "message"),
    [
        ({"mode": "batched"}, r"recorded execution \(batched\)"),
        ({"mode": "padded", "shapes": [1, 8]}, r"recorded execution \(padded to 1/8 rows\)"),
        ({"mode": "padded", "shapes": [4, 64]}, r"recorded execution \(padded to 4/64 rows\)"),
        # Holds on its own, but is not the execution the goldens were recorded under.
        ({"mode": "padded", "shapes": [4]}, "golden examples"),
    ],
)
def test_an_execution_record_that_does_not_hold_is_refused(
    execution: dict[str, Any],
    message: str,
    reference_models: dict[str, str],
    tmp_path: Path,
    batch_dependent: None,
) -> None:
    directory, metadata = _copy(reference_models["digits-mlp"], tmp_path)
    metadata["execution"] = execution

    with pytest.raises(ArtifactMismatch, match=message):
        load_verified(directory, metadata, name="digits-mlp", version="copy")


def test_an_old_claim_of_batch_invariance_is_verified_too(
    reference_models: dict[str, str], tmp_path: Path, batch_dependent: None
) -> None:
    directory, metadata = _copy(reference_models["digits-mlp"], tmp_path)
    del metadata["execution"]
    metadata["batch_invariant"] = True

    with pytest.raises(ArtifactMismatch, match=r"recorded execution \(batched\)"):
        load_verified(directory, metadata, name="digits-mlp", version="copy")


def test_a_recorded_format_the_file_does_not_have_is_refused(
    reference_models: dict[str, str], tmp_path: Path
) -> None:
    directory, metadata = _copy(reference_models["digits-mlp"], tmp_path)
    metadata["model_format"] = "torchscript"

    with pytest.raises(ArtifactMismatch, match=r"model\.pt2 is torch\.export"):
        load_verified(directory, metadata, name="digits-mlp", version="copy")


def test_a_legacy_torchscript_artifact_loads_row_by_row_with_a_warning(
    reference_models: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    template = dict(bentoml.models.get(reference_models["digits-mlp"]).info.metadata)
    metadata = legacy_torchscript_artifact(tmp_path / "legacy", template)

    with caplog.at_level(logging.WARNING, logger="services.artifact"):
        loaded = load_verified(tmp_path / "legacy", metadata, name="digits-mlp", version="old")

    assert loaded.execution.mode == "rowwise"
    assert "model.pt is TorchScript, which torch 2.13 deprecates" in caplog.text
    assert "served one row at a time" in caplog.text
    x = loaded.metadata.feature_schema.encode_rows(loaded.metadata.golden_examples.inputs)
    assert loaded.predictor.predict_proba(x).tolist() == metadata["golden_examples"]["outputs"]
