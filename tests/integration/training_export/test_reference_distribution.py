"""Exports record a reference distribution; PSI against it: ok for like data, alert for shifts."""

import json
import shutil
from pathlib import Path
from typing import Any

import bentoml
import pandas as pd
import pytest

from services.artifact.loader import load_from_store
from services.artifact.metadata import ArtifactMetadata
from services.artifact.reference import ReferenceDistribution
from services.monitoring.drift import drift_report
from tests.utils.factories import tiny_frame, write_model, write_schema, write_table
from tests.utils.recipes import SEED
from training_export.cli import main
from training_export.recipes.fraud_xgb import FraudXGB, generate_transactions
from training_export.reference import reference_distribution
from training_export.schema_inference import infer_schema
from training_export.settings import ExportSettings
from training_export.tables import frame_source
from training_export.train import _split

pytestmark = pytest.mark.integration


def stored_reference(tag: str) -> ReferenceDistribution:
    metadata = ArtifactMetadata.model_validate(bentoml.models.get(tag).info.metadata)
    assert metadata.reference_distribution is not None
    return metadata.reference_distribution


def fraud_split() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training and holdout rows of fraud-xgb, as its export split them."""
    recipe = FraudXGB()
    data = recipe.load_data(seed=SEED, settings=ExportSettings())
    return _split(data.frame, recipe.target, SEED)


def served_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the prediction log holds them: JSON numbers, booleans and text."""
    records: list[dict[str, Any]] = json.loads(
        frame.drop(columns="is_fraud").to_json(orient="records")
    )
    return records


def test_recipe_export_records_the_training_split_distribution(
    reference_models: dict[str, str],
) -> None:
    reference = stored_reference(reference_models["fraud-xgb"])
    train, _ = fraud_split()
    schema = infer_schema(train, target="is_fraud")

    recomputed = reference_distribution(
        frame_source(train, batch_rows=4096), schema.features, source="training"
    )

    assert reference == recomputed
    assert (reference.source, reference.rows, reference.bins) == ("training", 15_000, 10)
    assert list(reference.features) == schema.names
    assert reference.features["merchant_category"].kind == "categorical"
    assert reference.features["card_present"].kind == "categorical"


@pytest.mark.parametrize("recipe", ["cancer-rf", "digits-mlp"])
def test_every_reference_recipe_records_every_feature(
    recipe: str, reference_models: dict[str, str]
) -> None:
    metadata = ArtifactMetadata.model_validate(
        bentoml.models.get(reference_models[recipe]).info.metadata
    )

    reference = metadata.reference_distribution
    assert reference is not None
    assert reference.source == "training"
    assert reference.rows == metadata.training_data.rows
    assert list(reference.features) == metadata.feature_schema.names


def test_psi_is_near_zero_for_rows_drawn_like_the_training_data(
    reference_models: dict[str, str],
) -> None:
    reference = stored_reference(reference_models["fraud-xgb"])
    _, holdout = fraud_split()
    fresh = generate_transactions(seed=7, rows=5000)

    for sample in (holdout, fresh):
        report = drift_report(reference, served_rows(sample))

        assert report.rows == 5000
        assert report.status == "ok", [(f.name, f.psi) for f in report.features]
        assert max(f.psi for f in report.features) < 0.02


def test_psi_alerts_on_shifted_inputs_and_only_on_the_shifted_features(
    reference_models: dict[str, str],
) -> None:
    reference = stored_reference(reference_models["fraud-xgb"])
    shifted = generate_transactions(seed=7, rows=5000)
    shifted["amount"] = shifted["amount"] * 3
    shifted["hour"] = (shifted["hour"] + 12) % 24
    shifted.loc[::2, "merchant_category"] = "travel"

    report = drift_report(reference, served_rows(shifted))

    statuses = {f.name: f.status for f in report.features}
    assert report.status == "alert"
    assert {name for name, status in statuses.items() if status == "alert"} == {
        "amount",
        "hour",
        "merchant_category",
    }
    assert {name for name, status in statuses.items() if status == "ok"} == {
        "distance_from_home_km",
        "txn_count_1h",
        "card_present",
        "account_age_days",
        "is_foreign",
    }


def test_show_prints_the_reference_distribution(
    reference_models: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    tag = reference_models["fraud-xgb"]

    assert main(["show", tag]) == 0
    text = capsys.readouterr().out
    assert main(["show", tag, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)

    assert "reference distribution (training data, 15000 rows, 10 quantile bins" in text
    assert "  merchant_category" in text
    assert document["metadata"]["reference_distribution"]["source"] == "training"


def _own_export(tmp_path: Path, name: str, train: pd.DataFrame | None) -> str:
    args = [
        "export", "--framework", "xgboost", "--name", name, "--version", "v1",
        "--model", str(write_model("xgboost", tmp_path / "model")),
        "--schema", str(write_schema(tmp_path / "schema.json")),
        "--eval-data", str(write_table(tmp_path / "eval.parquet", tiny_frame(rows=40, seed=7))),
    ]  # fmt: skip
    if train is not None:
        args += ["--train-data", str(write_table(tmp_path / "train.csv", train))]
    assert main(args) == 0
    return f"{name}:v1"


def test_own_model_records_its_training_data_or_else_says_it_used_the_evaluation_data(
    tmp_path: Path,
) -> None:
    with_train = _own_export(tmp_path / "a", "ref-own-train", tiny_frame(rows=200, seed=1))
    eval_only = _own_export(tmp_path / "b", "ref-own-eval", None)

    trained = stored_reference(with_train)
    evaluated = stored_reference(eval_only)
    assert (trained.source, trained.rows) == ("training", 200)
    assert (evaluated.source, evaluated.rows) == ("evaluation", 40)
    assert trained.features["flag"].kind == "categorical"
    assert list(trained.features) == ["size", "count", "flag", "color"]


def test_a_model_exported_before_drift_support_loads_and_reports_no_reference(
    reference_models: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    current = bentoml.models.get(reference_models["fraud-xgb"])
    metadata = dict(current.info.metadata)
    del metadata["reference_distribution"]
    with bentoml.models.create(
        "pre-drift-fraud:v1",
        labels=dict(current.info.labels),
        metadata=metadata,
        signatures={"predict": {"batchable": True, "batch_dim": 0}},
        module="services.artifact",
    ) as old:
        for name in metadata["artifact_files"]:
            shutil.copy2(Path(current.path) / name, Path(old.path) / name)

    loaded = load_from_store("pre-drift-fraud:v1")
    report = drift_report(loaded.metadata.reference_distribution, [{"amount": 1.0}])

    assert loaded.metadata.reference_distribution is None
    assert report.status == "no_reference"
    assert main(["show", "pre-drift-fraud:v1"]) == 0
    assert "reference distribution: none (exported before drift support)" in capsys.readouterr().out


def test_stored_reference_round_trips_through_the_store_exactly(
    reference_models: dict[str, str],
) -> None:
    raw = bentoml.models.get(reference_models["digits-mlp"]).info.metadata["reference_distribution"]

    reference = ReferenceDistribution.model_validate(raw)

    assert reference.model_dump(mode="json") == raw
    pixel = reference.features["pixel_0"]  # always 0 in the digits data: one edge, all below it
    assert pixel.model_dump() == {
        "kind": "numeric",
        "edges": (0.0,),
        "proportions": (1.0, 0.0),
        "missing_rate": 0.0,
    }
