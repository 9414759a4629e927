"""The reference recipes, trained into a temporary store and loaded back."""

import json
import os
import subprocess
import sys
from pathlib import Path

import bentoml
import numpy as np
import pytest

from services.artifact.digests import file_sha256
from services.artifact.loader import load_from_store, load_verified
from tests.utils.golden_fixtures import FIXTURES, fixture_differences, fixture_document
from tests.utils.recipes import train_reference
from training_export.cli import main

pytestmark = pytest.mark.integration
RECIPES = ("fraud-xgb", "cancer-rf", "digits-mlp")


@pytest.mark.parametrize("recipe", RECIPES)
def test_stored_model_loads_back_and_reproduces_its_golden_outputs(
    recipe: str, reference_models: dict[str, str]
) -> None:
    model = load_from_store(reference_models[recipe])
    golden = model.metadata.golden_examples

    outputs = model.predictor.predict_proba(
        model.metadata.feature_schema.encode_rows(golden.inputs)
    )

    assert np.array_equal(outputs, np.asarray(golden.outputs))


@pytest.mark.parametrize("recipe", RECIPES)
def test_each_golden_row_alone_gives_its_recorded_output(
    recipe: str, reference_models: dict[str, str]
) -> None:
    model = load_from_store(reference_models[recipe])
    golden = model.metadata.golden_examples
    schema = model.metadata.feature_schema

    for row, expected in zip(golden.inputs, golden.outputs, strict=True):
        assert model.predictor.predict_proba(schema.encode_rows([row]))[0].tolist() == expected


@pytest.mark.parametrize("recipe", RECIPES)
def test_stored_model_carries_the_full_artifact_contract(
    recipe: str, reference_models: dict[str, str]
) -> None:
    model = bentoml.models.get(reference_models[recipe])
    info, metadata = model.info, model.info.metadata

    assert str(model.tag) == f"{recipe}:test-seed42"
    assert info.labels["stage"] == "candidate"
    assert info.labels["framework"] == metadata["framework"]
    signature = info.signatures["predict"]
    assert (signature.batchable, signature.batch_dim) == (True, (0, 0))
    assert len(metadata["golden_examples"]["inputs"]) >= 16
    assert len(metadata["training_data"]["sha256"]) == 64
    assert metadata["seed"] == 42
    assert {"python", "numpy", "bentoml"} <= set(metadata["library_versions"])
    assert metadata["metrics"]["accuracy"] > 0.8
    for feature in metadata["feature_schema"]["features"]:
        assert feature["dtype"] in ("bool", "category") or feature["minimum"] <= feature["maximum"]
    for name, digest in metadata["artifact_files"].items():
        assert file_sha256(Path(model.path) / name) == digest


@pytest.mark.parametrize(
    ("recipe", "model_file", "model_format", "mode"),
    [
        ("fraud-xgb", "model.json", "xgboost-json", "batched"),
        ("cancer-rf", "model.joblib", "joblib", "batched"),
        ("digits-mlp", "model.pt2", "torch.export", "padded"),
    ],
)
def test_stored_model_records_its_format_and_batch_execution(
    recipe: str, model_file: str, model_format: str, mode: str, reference_models: dict[str, str]
) -> None:
    stored = bentoml.models.get(reference_models[recipe])
    metadata = stored.info.metadata
    loaded = load_from_store(reference_models[recipe])

    assert metadata["model_format"] == model_format
    assert metadata["model_file"] == model_file
    assert metadata["execution"]["mode"] == mode
    assert metadata["batch_invariant"] is (mode == "batched")
    # The loader serves what the export recorded, on the kernels that recorded it.
    assert loaded.execution.mode == mode
    assert list(loaded.execution.shapes) == metadata["execution"]["shapes"]
    if mode == "padded":
        assert metadata["execution"]["shapes"], "padded execution names its shapes"


@pytest.mark.parametrize("recipe", RECIPES)
def test_golden_outputs_and_metrics_match_the_committed_fixture(
    recipe: str, reference_models: dict[str, str]
) -> None:
    metadata = dict(bentoml.models.get(reference_models[recipe]).info.metadata)
    expected = json.loads((FIXTURES / f"{recipe}.json").read_text(encoding="utf-8"))

    assert fixture_differences(metadata["framework"], fixture_document(metadata), expected) == []


def test_digits_mlp_trained_on_another_instruction_set_still_matches_the_fixture(
    reference_models: dict[str, str],
) -> None:
    """What differs between two x86-64 machines of one kind is the SIMD level their float32
    kernels use. This process runs AVX-512 kernels; a child limited to AVX2 (torch's
    ATEN_CPU_CAPABILITY, MKL's MKL_ENABLE_INSTRUCTIONS) trains as an AVX2-only CPU would."""
    import torch

    if torch.backends.cpu.get_cpu_capability() != "AVX512":
        pytest.skip("emulating an AVX2-only CPU needs an AVX-512 one to differ from")
    environment = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
    command = [sys.executable, "-m", "training_export", "train", "digits-mlp"]
    subprocess.run([*command, "--seed", "42", "--version", "avx2"], env=environment, check=True)
    stored = bentoml.models.get("digits-mlp:avx2")
    metadata = dict(stored.info.metadata)
    expected = json.loads((FIXTURES / "digits-mlp.json").read_text(encoding="utf-8"))

    assert metadata["kernels"].endswith("cpu AVX2")
    assert fixture_differences("torch", fixture_document(metadata), expected) == []
    # Served here on AVX-512 kernels, its goldens are checked within the serving tolerance.
    loaded = load_verified(
        Path(stored.path), metadata, name="digits-mlp", version="avx2", golden_tolerance=1e-6
    )
    assert loaded.tag == "digits-mlp:avx2"


def test_fraud_golden_set_covers_both_classes(reference_models: dict[str, str]) -> None:
    outputs = bentoml.models.get(reference_models["fraud-xgb"]).info.metadata["golden_examples"]
    inputs = outputs["inputs"]

    assert {"amount", "merchant_category", "card_present"} <= set(inputs[0])
    assert max(row[1] for row in outputs["outputs"]) > 0.05


def test_training_twice_gives_identical_golden_outputs_and_metrics(
    reference_models: dict[str, str],
) -> None:
    first = bentoml.models.get(reference_models["digits-mlp"]).info.metadata
    second = bentoml.models.get(
        train_reference("digits-mlp", version="again", model_name="digits-mlp-again")
    ).info.metadata

    assert second["golden_examples"] == first["golden_examples"]
    assert second["metrics"] == first["metrics"]


def test_an_existing_tag_is_never_overwritten(
    reference_models: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    before = bentoml.models.get(reference_models["cancer-rf"]).info.creation_time

    code = main(["train", "cancer-rf", "--version", "test-seed42"])

    assert code == 1
    assert "already exists" in capsys.readouterr().err
    assert bentoml.models.get(reference_models["cancer-rf"]).info.creation_time == before


def test_skip_existing_trains_nothing_new(
    reference_models: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    count = len(bentoml.models.list())

    assert main(["train", "--all", "--skip-existing"]) == 0
    assert len(bentoml.models.list()) == count
    assert "already in the store, skipped" in capsys.readouterr().out


def test_list_and_show_describe_the_store(
    reference_models: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["list", "--json"]) == 0
    listed = {row["tag"] for row in json.loads(capsys.readouterr().out)}
    assert set(reference_models.values()) <= listed

    assert main(["show", reference_models["fraud-xgb"]]) == 0
    shown = capsys.readouterr().out
    assert "merchant_category" in shown
    assert "roc_auc" in shown


def test_unknown_recipe_exits_with_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "iris-svm"]) == 1
    assert "unknown recipe 'iris-svm'; known: fraud-xgb, cancer-rf, digits-mlp" in (
        capsys.readouterr().err
    )


def test_show_of_an_absent_model_exits_with_a_clear_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["show", "nope:v1"]) == 1
    assert "no model nope:v1" in capsys.readouterr().err
