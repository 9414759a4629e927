from pathlib import Path

import numpy as np
import pytest

from services.artifact.adapters import FRAMEWORKS, get_adapter
from services.artifact.adapters.base import check_width
from services.artifact.execution import measure_execution
from services.errors import InvalidFeatureSchema, ModelNotLoaded
from tests.utils.factories import encoded, tiny_frame, write_model


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_saved_model_loads_and_returns_probabilities(framework: str, tmp_path: Path) -> None:
    path = write_model(framework, tmp_path)
    x, _ = encoded(tiny_frame(rows=10, seed=1))

    probabilities = get_adapter(framework).load(path).predict_proba(x)

    assert probabilities.shape == (10, 2)
    assert probabilities.dtype == np.float64
    assert np.allclose(probabilities.sum(axis=1), 1.0)


@pytest.mark.parametrize("framework", ["sklearn", "xgboost"])
def test_tree_models_are_batch_invariant(framework: str, tmp_path: Path) -> None:
    predictor = get_adapter(framework).load(write_model(framework, tmp_path))
    x, _ = encoded(tiny_frame(rows=257, seed=3))
    alone = np.concatenate([predictor.predict_proba(x[i : i + 1]) for i in range(len(x))])

    assert np.array_equal(predictor.predict_proba(x), alone)
    record = measure_execution(predictor.predict_proba, x[:16])
    assert record is not None
    assert record.mode == "batched"


@pytest.mark.parametrize(
    ("framework", "name", "model_format"),
    [
        ("sklearn", "model.joblib", "joblib"),
        ("xgboost", "model.json", "xgboost-json"),
        ("torch", "model.pt2", "torch.export"),
    ],
)
def test_save_writes_the_supported_format(
    framework: str, name: str, model_format: str, tmp_path: Path
) -> None:
    path = write_model(framework, tmp_path)

    assert path.name == name
    assert get_adapter(framework).model_format(path.name) == model_format


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_width_mismatch_is_refused(framework: str, tmp_path: Path) -> None:
    predictor = get_adapter(framework).load(write_model(framework, tmp_path))

    with pytest.raises(InvalidFeatureSchema, match="5"):
        check_width(predictor, 5)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_matching_width_passes(framework: str, tmp_path: Path) -> None:
    check_width(get_adapter(framework).load(write_model(framework, tmp_path)), 4)


@pytest.mark.parametrize(
    ("framework", "suffix"),
    [("sklearn", ".joblib"), ("xgboost", ".json"), ("torch", ".pt2"), ("torch", ".pt")],
)
def test_garbage_file_does_not_load(framework: str, suffix: str, tmp_path: Path) -> None:
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"this is not a model")

    with pytest.raises(ModelNotLoaded, match=path.name):
        get_adapter(framework).load(path)


def test_xgboost_refuses_a_non_probability_objective(tmp_path: Path) -> None:
    import xgboost as xgb

    x, y = encoded(tiny_frame())
    booster = xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(x, label=y), 2)
    booster.save_model(str(tmp_path / "model.json"))

    with pytest.raises(ModelNotLoaded, match="objective"):
        get_adapter("xgboost").load(tmp_path / "model.json")


def test_sklearn_refuses_an_object_without_predict_proba(tmp_path: Path) -> None:
    import joblib

    joblib.dump({"not": "a model"}, tmp_path / "model.joblib")

    with pytest.raises(ModelNotLoaded, match="predict_proba"):
        get_adapter("sklearn").load(tmp_path / "model.joblib")


def test_unknown_framework_is_refused() -> None:
    with pytest.raises(InvalidFeatureSchema, match="unknown framework 'onnx'"):
        get_adapter("onnx")


def test_artifact_name_checks_the_suffix() -> None:
    with pytest.raises(InvalidFeatureSchema, match=r"\.json, \.ubj"):
        get_adapter("xgboost").artifact_name(Path("model.pkl"))
    assert get_adapter("xgboost").artifact_name(Path("booster.UBJ")) == "model.ubj"
    assert get_adapter("torch").artifact_name(Path("net.pt2")) == "model.pt2"
    assert get_adapter("torch").artifact_name(Path("net.pt")) == "model.pt"
    with pytest.raises(InvalidFeatureSchema, match=r"\.pt2, \.pt"):
        get_adapter("torch").artifact_name(Path("net.pth"))
