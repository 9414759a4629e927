"""Rewrite tests/fixtures/golden/*.json from fresh training runs (`make golden-fixtures`), and
compare a training run with them.

Run the rewrite only after a deliberate change of a recipe or of a pinned library, and review
the diff: these files are what the regression test holds every later run to.

Which guarantee holds where: on one machine with one set of libraries, training is
bit-identical run after run (tests/integration/training_export holds that exactly). Across
machines, tree models (XGBoost, scikit-learn) stay bit-identical, but float32 networks do not:
each CPU runs its own matrix kernels (AVX2, AVX-512, AMX) and rounds differently, so the
committed fixture, made on one CPU, is compared on another within `FLOAT_TOLERANCE`, with
identical predicted classes. The execution record's mode must match everywhere; for float
networks its padded shapes are a property of the CPU's kernels (which batch sizes share one
blocking) and may differ between CPUs, so only the mode is compared.
"""

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "golden"
# Measured: digits-mlp trained on AVX-512 vs AVX2 kernels differs by up to 7.6e-8 in golden
# probabilities and under 1e-8 in log loss; scalar (non-SIMD) kernels drift to 4e-4 and are not a
# machine of this kind.
FLOAT_TOLERANCE = 1e-6
FLOAT_FRAMEWORKS = frozenset({"torch"})


def fixture_document(metadata: dict[str, object]) -> dict[str, object]:
    """The parts of a model's metadata that must not change from run to run.

    File digests are included where the format's bytes are reproducible: a PyTorch archive
    holds a random serialization id, so for torch only the behaviour (golden outputs, metrics,
    execution) is held fixed.
    """
    keys = [
        "golden_examples",
        "metrics",
        "training_data",
        "feature_schema",
        "output_schema",
        "hyperparameters",
        "batch_invariant",
        "model_format",
        "execution",
    ]
    if metadata["framework"] not in FLOAT_FRAMEWORKS:
        keys.append("artifact_files")
    return {key: metadata[key] for key in keys}


def fixture_differences(
    framework: str, actual: dict[str, Any], expected: dict[str, Any]
) -> list[str]:
    """What differs between a run's fixture document and the committed one (empty: it holds).

    Exact for tree models; for float frameworks, probabilities and metrics within
    FLOAT_TOLERANCE, the same predicted class for every golden row and the same execution mode,
    everything else exact.
    """
    if framework not in FLOAT_FRAMEWORKS:
        return [] if actual == expected else ["the document differs (compared exactly)"]
    problems = [
        f"{key} differs"
        for key in sorted(set(actual) | set(expected))
        if key not in ("golden_examples", "metrics", "execution")
        and actual.get(key) != expected.get(key)
    ]
    if (actual.get("execution") or {}).get("mode") != (expected.get("execution") or {}).get("mode"):
        problems.append("the execution mode differs")
    got, want = actual["golden_examples"], expected["golden_examples"]
    if got["inputs"] != want["inputs"]:
        problems.append("golden inputs differ")
    outputs, recorded = np.asarray(got["outputs"]), np.asarray(want["outputs"])
    if outputs.shape != recorded.shape:
        return [*problems, f"golden outputs have shape {outputs.shape}, not {recorded.shape}"]
    worst = float(np.max(np.abs(outputs - recorded)))
    if worst > FLOAT_TOLERANCE:
        problems.append(f"golden outputs differ by up to {worst:.3g}")
    if not np.array_equal(outputs.argmax(axis=1), recorded.argmax(axis=1)):
        problems.append("a golden row's predicted class differs")
    if set(actual["metrics"]) != set(expected["metrics"]):
        problems.append("the metric names differ")
    for name in sorted(set(actual["metrics"]) & set(expected["metrics"])):
        if abs(actual["metrics"][name] - expected["metrics"][name]) > FLOAT_TOLERANCE:
            problems.append(f"metric {name} differs beyond {FLOAT_TOLERANCE:g}")
    return problems


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
