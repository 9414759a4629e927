"""Rewrite tests/fixtures/golden/*.json from fresh training runs (`make golden-fixtures`).

Run it only after a deliberate change of a recipe or of a pinned library, and review the diff:
these files are what the regression test holds every later run to.
"""

import json
import os
import tempfile
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "golden"


def fixture_document(metadata: dict[str, object]) -> dict[str, object]:
    """The parts of a model's metadata that must not change from run to run.

    File digests are included where the format's bytes are reproducible: a TorchScript
    archive holds a random serialization id and unstable name mangling, so for torch only
    the behaviour (golden outputs, metrics) is held fixed.
    """
    keys = [
        "golden_examples",
        "metrics",
        "training_data",
        "feature_schema",
        "output_schema",
        "hyperparameters",
        "batch_invariant",
    ]
    if metadata["framework"] != "torch":
        keys.append("artifact_files")
    return {key: metadata[key] for key in keys}


def main() -> None:
    os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="golden-fixtures-")
    os.environ["EXPORT_DATA_DIR"] = tempfile.mkdtemp(prefix="golden-data-")
    import bentoml

    from tests.utils.recipes import train_reference

    for recipe in ("fraud-xgb", "cancer-rf", "digits-mlp"):
        tag = train_reference(recipe, version="fixture")
        document = fixture_document(dict(bentoml.models.get(tag).info.metadata))
        path = FIXTURES / f"{recipe}.json"
        path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
