"""Tiny real data sets, schemas and models, made in the test's own temporary folder."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from services.artifact.schema import FeatureSchema, FeatureSpec

CATEGORIES = ("red", "green", "blue")


def tiny_frame(rows: int = 64, seed: int = 0) -> pd.DataFrame:
    """Four typed features and a binary `label` that depends on them."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "size": np.round(rng.normal(10.0, 3.0, rows), 3),
            "count": rng.integers(0, 20, rows).astype(np.int64),
            "flag": rng.random(rows) < 0.5,
            "color": rng.choice(CATEGORIES, rows),
        }
    )
    frame["label"] = ((frame["size"] > 10) ^ frame["flag"]).astype(np.int64)
    return frame


def tiny_schema_document() -> dict[str, Any]:
    """The schema file a user would write for `tiny_frame`."""
    return {
        "target": "label",
        "features": [
            {"name": "size", "dtype": "float"},
            {"name": "count", "dtype": "int"},
            {"name": "flag", "dtype": "bool"},
            {"name": "color", "dtype": "category", "categories": list(CATEGORIES)},
        ],
    }


def tiny_schema() -> FeatureSchema:
    document = tiny_schema_document()
    return FeatureSchema(features=tuple(FeatureSpec(**f) for f in document["features"]))


def encoded(frame: pd.DataFrame) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """The model input matrix and labels of `tiny_frame`."""
    from training_export.export import frame_columns

    schema = tiny_schema()
    return schema.encode_columns(frame_columns(frame, schema)), frame["label"].to_numpy()


def fit_model(framework: str, x: npt.NDArray[np.float32], y: npt.NDArray[np.int64]) -> Any:
    """A small real model of `framework`, trained with a fixed seed."""
    if framework == "sklearn":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    if framework == "xgboost":
        import xgboost as xgb

        params = {"objective": "binary:logistic", "max_depth": 2, "seed": 0, "nthread": 1}
        return xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=5)
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)
    ).eval()


def write_model(framework: str, directory: Path, frame: pd.DataFrame | None = None) -> Path:
    """Train on `frame` (default `tiny_frame()`) and save through the framework's adapter."""
    from services.artifact.adapters import get_adapter

    x, y = encoded(tiny_frame() if frame is None else frame)
    directory.mkdir(parents=True, exist_ok=True)
    name = get_adapter(framework).save(fit_model(framework, x, y), directory, example=x[:8])
    return directory / name


def write_torchscript(directory: Path, frame: pd.DataFrame | None = None) -> Path:
    """The torch model of `write_model`, saved as TorchScript (`model.pt`), as exports did
    before torch.export programs: what legacy artifacts and users' older files hold."""
    import warnings

    import torch

    x, y = encoded(tiny_frame() if frame is None else frame)
    directory.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(fit_model("torch", x, y))
        torch.jit.save(scripted, str(directory / "model.pt"))  # type: ignore[no-untyped-call]
    return directory / "model.pt"


def legacy_torchscript_artifact(directory: Path, template: dict[str, Any]) -> dict[str, Any]:
    """A PyTorch artifact as exports wrote them before torch.export programs and execution
    records: TorchScript, `batch_invariant: false`, goldens computed one row at a time.

    `template` is a current export's metadata (for its schema and golden inputs); the model is a
    small seeded network of the same width. Returns the metadata; the file goes to `directory`.
    """
    import copy
    import warnings

    import torch

    from services.artifact.adapters import get_adapter
    from services.artifact.digests import file_sha256
    from services.artifact.metadata import ArtifactMetadata

    metadata = copy.deepcopy(template)
    typed = ArtifactMetadata.model_validate(metadata)
    x = typed.feature_schema.encode_rows(typed.golden_examples.inputs)
    torch.manual_seed(0)
    network = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, len(typed.output_schema.classes)),
    ).eval()
    directory.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(network), str(directory / "model.pt"))  # type: ignore[no-untyped-call]
    adapter = get_adapter("torch")
    predictor = adapter.load(directory / "model.pt")
    alone = [predictor.predict_proba(x[i : i + 1])[0].tolist() for i in range(len(x))]
    for key in ("execution", "model_format"):
        metadata.pop(key, None)
    metadata.update(
        model_file="model.pt",
        artifact_files={"model.pt": file_sha256(directory / "model.pt")},
        batch_invariant=False,
        kernels=adapter.kernels(),
    )
    metadata["golden_examples"]["outputs"] = alone
    return metadata


def write_schema(path: Path, document: dict[str, Any] | None = None) -> Path:
    path.write_text(json.dumps(document or tiny_schema_document()), encoding="utf-8")
    return path


def write_table(path: Path, frame: pd.DataFrame) -> Path:
    """Parquet or CSV by the path's suffix."""
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def served_model(
    name: str,
    version: str,
    *,
    age_days: int = 0,
    schema: FeatureSchema | None = None,
    classes: tuple[int | str, ...] = (0, 1),
) -> Any:
    """A ServedModel for catalog and routing unit tests: its metadata holds only a schema, the
    classes and metrics (no files, no model); `age_days` back from a fixed export time."""
    from datetime import UTC, datetime, timedelta

    from services.artifact.metadata import ArtifactMetadata
    from services.artifact.schema import OutputSchema
    from services.catalog import ModelRef, ServedModel

    metadata = ArtifactMetadata.model_construct(
        feature_schema=schema or tiny_schema(),
        output_schema=OutputSchema(target="label", classes=classes),
        metrics={"accuracy": 0.9},
        reference_distribution=None,
    )
    return ServedModel(
        ref=ModelRef(name, version, "sklearn"),
        metadata=metadata,
        stage="candidate",
        created_at=datetime(2026, 11, 1, tzinfo=UTC) - timedelta(days=age_days),
    )
