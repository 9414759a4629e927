"""`python -m training_export export`: a user's own model, and every way its inputs can be wrong."""

import json
import logging
import zipfile
from pathlib import Path

import bentoml
import numpy as np
import pandas as pd
import pytest

from services.artifact.loader import load_from_store
from tests.utils.factories import (
    encoded,
    fit_model,
    tiny_frame,
    tiny_schema_document,
    write_model,
    write_schema,
    write_table,
    write_torchscript,
)
from training_export.cli import main

pytestmark = pytest.mark.integration


def _store_tags() -> set[str]:
    return {str(model.tag) for model in bentoml.models.list()}


def _export_args(tmp_path: Path, framework: str = "xgboost", **overrides: object) -> list[str]:
    files = {
        "model": write_model(framework, tmp_path / "model"),
        "schema": write_schema(tmp_path / "schema.json"),
        "eval-data": write_table(tmp_path / "eval.parquet", tiny_frame(rows=40, seed=7)),
    }
    files.update(overrides)  # type: ignore[arg-type]
    args = ["export", "--framework", framework, "--name", f"own-{framework}"]
    for option, value in files.items():
        if value is not None:
            args += [f"--{option}", str(value)]
    return args


def _fails_cleanly(args: list[str], capsys: pytest.CaptureFixture[str], message: str) -> None:
    before = _store_tags()

    code = main(args)

    err = capsys.readouterr().err
    assert code == 1, err
    assert message in err
    assert "Traceback" not in err
    assert _store_tags() == before


@pytest.mark.parametrize("framework", ["sklearn", "xgboost", "torch"])
def test_own_model_is_exported_with_golden_outputs(
    framework: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [*_export_args(tmp_path, framework), "--version", "v1", "--seed", "0"]

    assert main(args) == 0

    assert f"exported own-{framework}:v1" in capsys.readouterr().out
    model = load_from_store(f"own-{framework}:v1")
    assert len(model.metadata.golden_examples.inputs) == 16
    assert model.metadata.output_schema.classes == (0, 1)
    assert model.metadata.evaluation_data.rows == 40
    assert model.metadata.seed == 0


def test_own_torchscript_model_is_accepted_with_a_deprecation_notice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    args = _export_args(tmp_path, "torch", model=write_torchscript(tmp_path / "script"))

    with caplog.at_level(logging.WARNING, logger="services.artifact"):
        assert main([*args, "--version", "script"]) == 0

    assert "TorchScript, which torch 2.13 deprecates" in caplog.text
    model = load_from_store("own-torch:script")
    assert model.metadata.model_file == "model.pt"
    assert model.metadata.model_format == "torchscript"
    assert model.execution.mode in ("batched", "padded")


def test_own_torch_export_archive_is_stored_without_its_pickled_example_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    x, y = encoded(tiny_frame())
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(
        fit_model("torch", x, y), (torch.from_numpy(x[:4]),), dynamic_shapes=({0: batch},)
    )
    theirs = tmp_path / "theirs.pt2"
    torch.export.save(program, str(theirs))

    assert main([*_export_args(tmp_path, "torch", model=theirs), "--version", "theirs"]) == 0

    stored = Path(bentoml.models.get("own-torch:theirs").path) / "model.pt2"
    with zipfile.ZipFile(stored) as archive:
        sizes = {info.filename.split("/", 1)[1]: info.file_size for info in archive.infolist()}
    assert sizes["data/sample_inputs/model.pt"] == 0
    assert load_from_store("own-torch:theirs").metadata.model_format == "torch.export"


def test_training_data_sets_ranges_and_digest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = tiny_frame(rows=100, seed=3)
    args = _export_args(tmp_path, **{"train-data": write_table(tmp_path / "train.csv", train)})

    assert main([*args, "--version", "with-train"]) == 0

    metadata = load_from_store("own-xgboost:with-train").metadata
    size = metadata.feature_schema.features[0]
    assert (size.minimum, size.maximum) == (train["size"].min(), train["size"].max())
    assert metadata.training_data.rows == 100
    assert metadata.training_data.sha256 is not None


def test_csv_evaluation_data_gives_the_same_metrics_as_parquet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = tiny_frame(rows=40, seed=7)
    csv = write_table(tmp_path / "eval.csv", frame)

    assert main([*_export_args(tmp_path), "--version", "pq"]) == 0
    assert main([*_export_args(tmp_path, **{"eval-data": csv}), "--version", "csv"]) == 0

    parquet_metrics = load_from_store("own-xgboost:pq").metadata.metrics
    assert load_from_store("own-xgboost:csv").metadata.metrics == parquet_metrics


def test_missing_column_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_table(tmp_path / "bad.parquet", tiny_frame().drop(columns=["count"]))

    _fails_cleanly(_export_args(tmp_path, **{"eval-data": bad}), capsys, "missing column 'count'")


def test_extra_column_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_table(tmp_path / "bad.parquet", tiny_frame().assign(secret=1))

    _fails_cleanly(
        _export_args(tmp_path, **{"eval-data": bad}), capsys, "unexpected column 'secret'"
    )


def test_wrong_dtype_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_table(tmp_path / "bad.parquet", tiny_frame().assign(size="large"))

    _fails_cleanly(_export_args(tmp_path, **{"eval-data": bad}), capsys, "expected float")


def test_forbidden_nan_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = tiny_frame()
    frame.loc[9, "size"] = np.nan
    bad = write_table(tmp_path / "bad.parquet", frame)

    _fails_cleanly(_export_args(tmp_path, **{"eval-data": bad}), capsys, "first row 9")


def test_empty_data_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_table(tmp_path / "bad.parquet", tiny_frame().iloc[:0])

    _fails_cleanly(_export_args(tmp_path, **{"eval-data": bad}), capsys, "has no rows")


def test_too_few_rows_for_golden_examples_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_table(tmp_path / "bad.parquet", tiny_frame(rows=10))

    _fails_cleanly(_export_args(tmp_path, **{"eval-data": bad}), capsys, "at least 16")


def test_unknown_framework_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _export_args(tmp_path)
    args[args.index("xgboost")] = "onnx"

    _fails_cleanly(args, capsys, "unknown framework 'onnx'")


def test_model_file_that_does_not_load_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"learner": "nope"}', encoding="utf-8")

    _fails_cleanly(_export_args(tmp_path, model=broken), capsys, "not a loadable XGBoost model")


@pytest.mark.parametrize("framework", ["sklearn", "xgboost", "torch"])
def test_schema_wider_than_the_model_is_refused(
    framework: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = tiny_schema_document()
    document["features"].append({"name": "weight", "dtype": "float"})
    schema = write_schema(tmp_path / "wide.json", document)
    data = write_table(tmp_path / "wide.parquet", tiny_frame().assign(weight=1.0))

    _fails_cleanly(
        _export_args(tmp_path, framework, schema=schema, **{"eval-data": data}),
        capsys,
        "5 features",
    )


def test_existing_tag_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [*_export_args(tmp_path), "--version", "taken"]
    assert main(args) == 0

    _fails_cleanly(args, capsys, "already exists")


def test_invalid_schema_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schema = tmp_path / "bad-schema.json"
    schema.write_text(json.dumps({"target": "label", "features": []}), encoding="utf-8")

    _fails_cleanly(_export_args(tmp_path, schema=schema), capsys, "not a valid feature schema")


def test_labels_outside_declared_classes_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = {**tiny_schema_document(), "classes": [0, 2]}
    schema = write_schema(tmp_path / "classes.json", document)

    _fails_cleanly(_export_args(tmp_path, schema=schema), capsys, "outside the model's classes")


def test_help_explains_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("train", "export", "list", "show"):
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])
        assert exited.value.code == 0
    assert "schema file (JSON)" in capsys.readouterr().out


def test_missing_model_file_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fails_cleanly(_export_args(tmp_path, model=tmp_path / "absent.json"), capsys, "no such file")


def test_parquet_is_read_in_record_batches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPORT_BATCH_ROWS", "7")
    seen: list[int] = []
    original = pd.DataFrame.__len__

    args = [*_export_args(tmp_path), "--version", "batched"]
    from training_export import tables

    real_batches = tables.Table.batches

    def spy(self: tables.Table) -> object:
        for frame in real_batches(self):
            seen.append(original(frame))
            yield frame

    monkeypatch.setattr(tables.Table, "batches", spy)
    assert main(args) == 0
    assert max(seen) == 7
