"""The reference distribution: exact streamed quantiles, shares, and identical records per data."""

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from services.artifact.reference import (
    CategoricalReference,
    NumericReference,
    ReferenceDistribution,
)
from services.artifact.schema import FeatureSpec
from training_export import reference as reference_module
from training_export.errors import ExportError
from training_export.recipes.fraud_xgb import generate_transactions
from training_export.reference import (
    export_reference,
    reference_distribution,
    reference_lines,
)
from training_export.schema_inference import infer_schema
from training_export.tables import FrameSource, frame_source

DECILES = np.arange(1, 10) / 10


class CountingSource:
    """A batch source that counts how often the data is read."""

    def __init__(self, frame: pd.DataFrame, batch_rows: int) -> None:
        self._source = frame_source(frame, batch_rows=batch_rows)
        self.passes = 0

    def __call__(self) -> Iterator[pd.DataFrame]:
        self.passes += 1
        return self._source()


def numeric_frame(rows: int = 3000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    signed = rng.normal(0.0, 5.0, rows)
    signed[:50] = -0.0  # negative zero sorts with zero
    with_gaps = rng.lognormal(1.0, 2.0, rows)
    with_gaps[rng.random(rows) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "signed": signed,
            "skewed": with_gaps,
            "ties": rng.poisson(0.7, rows).astype(np.int64),
            "constant": np.zeros(rows, dtype=np.int64),
        }
    )


def numeric_specs(frame: pd.DataFrame) -> list[FeatureSpec]:
    return [
        FeatureSpec(
            name=str(name),
            dtype="int" if frame[name].dtype.kind == "i" else "float",
            missing="impute",
            impute_value=0.0,
        )
        for name in frame.columns
    ]


def expected_numeric(values: np.ndarray, rows: int) -> tuple[list[float], list[float], float]:
    """numpy's inverted_cdf deciles, and each bin's share of all rows."""
    present = values[~np.isnan(values)]
    edges = np.unique(np.quantile(present, DECILES, method="inverted_cdf"))
    counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1)
    return edges.tolist(), (counts / rows).tolist(), (rows - len(present)) / rows


@pytest.mark.parametrize(("batch_rows", "budget"), [(100_000, 1 << 22), (7, 1 << 22), (333, 9)])
def test_numeric_edges_are_numpys_exact_quantiles_at_any_batch_size_and_budget(
    batch_rows: int, budget: int
) -> None:
    frame = numeric_frame()

    reference = reference_distribution(
        frame_source(frame, batch_rows=batch_rows),
        numeric_specs(frame),
        source="training",
        collect_budget=budget,
    )

    for name in frame.columns:
        feature = reference.features[str(name)]
        assert isinstance(feature, NumericReference)
        edges, proportions, missing_rate = expected_numeric(
            frame[name].to_numpy(dtype=np.float64), len(frame)
        )
        assert list(feature.edges) == edges, name
        assert list(feature.proportions) == proportions, name
        assert feature.missing_rate == missing_rate, name


def test_identical_data_gives_an_identical_record_whatever_the_batching() -> None:
    frame = generate_transactions(seed=5, rows=4000)
    specs = infer_schema(frame, target="is_fraud").features

    records = {
        reference_distribution(
            frame_source(frame, batch_rows=rows), specs, source="training", collect_budget=budget
        ).model_dump_json()
        for rows, budget in [(65_536, 1 << 22), (1000, 1 << 22), (999, 50), (4000, 10)]
    }

    assert len(records) == 1


def test_zero_one_data_takes_one_pass_and_continuous_data_two() -> None:
    rng = np.random.default_rng(0)
    discrete = pd.DataFrame({"x": rng.integers(0, 2, 5000)})
    continuous = pd.DataFrame({"x": rng.normal(0.0, 1.0, 5000)})
    spec = [FeatureSpec(name="x", dtype="float")]
    passes = {}

    for name, frame in [("discrete", discrete), ("continuous", continuous)]:
        source = CountingSource(frame, batch_rows=512)
        reference_distribution(source, spec, source="training")
        passes[name] = source.passes

    assert passes == {"discrete": 1, "continuous": 2}


def test_a_tiny_collect_budget_still_ends_within_eight_passes() -> None:
    frame = pd.DataFrame({"x": np.random.default_rng(1).normal(0.0, 1.0, 5000)})
    source = CountingSource(frame, batch_rows=512)

    reference = reference_distribution(
        source, [FeatureSpec(name="x", dtype="float")], source="training", collect_budget=1
    )

    feature = reference.features["x"]
    assert isinstance(feature, NumericReference)
    assert list(feature.edges) == expected_numeric(frame["x"].to_numpy(), 5000)[0]
    assert 2 < source.passes <= 8


def test_no_bucket_collects_more_than_its_share_of_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sizes: list[int] = []

    class MeasuredCollection(reference_module._Collection):
        def update(self, keys: np.ndarray) -> None:
            super().update(keys)
            sizes.append(sum(len(part) for part in self._parts))

    monkeypatch.setattr(reference_module, "_Collection", MeasuredCollection)
    frame = numeric_frame(rows=20_000)
    budget = 4 * 9 * 500  # 4 features x 9 deciles x 500 values

    reference_distribution(
        frame_source(frame, batch_rows=1000),
        numeric_specs(frame),
        source="training",
        collect_budget=budget,
    )

    assert sizes
    assert max(sizes) <= 500


def test_categories_and_booleans_get_shares_of_every_declared_value_and_a_missing_rate() -> None:
    frame = pd.DataFrame(
        {
            "color": ["red", "red", None, "blue", "red", "blue", "red", None],
            "flag": [True, False, True, True, True, True, False, True],
            "score": [0.0, 1.0, np.nan, 0.0, 1.0, np.nan, np.nan, 1.0],  # a bool from CSV
        }
    )
    specs = [
        FeatureSpec(
            name="color", dtype="category", categories=("red", "green", "blue"), missing="impute",
            impute_value=0.0,
        ),
        FeatureSpec(name="flag", dtype="bool"),
        FeatureSpec(name="score", dtype="bool", missing="impute", impute_value=0.0),
    ]  # fmt: skip

    reference = reference_distribution(frame_source(frame, batch_rows=3), specs, source="training")

    assert reference.features["color"] == CategoricalReference(
        shares={"red": 4 / 8, "green": 0.0, "blue": 2 / 8}, missing_rate=2 / 8
    )
    assert reference.features["flag"] == CategoricalReference(
        shares={"false": 2 / 8, "true": 6 / 8}, missing_rate=0.0
    )
    assert reference.features["score"] == CategoricalReference(
        shares={"false": 2 / 8, "true": 3 / 8}, missing_rate=3 / 8
    )
    assert list(reference.features) == ["color", "flag", "score"]
    assert reference.rows == 8


def test_a_feature_that_is_always_missing_has_one_empty_bin() -> None:
    frame = pd.DataFrame({"x": [np.nan] * 5, "y": [1.0, 2.0, 3.0, 4.0, 5.0]})
    specs = [
        FeatureSpec(name="x", dtype="float", missing="impute", impute_value=0.0),
        FeatureSpec(name="y", dtype="float"),
    ]

    feature = reference_distribution(
        frame_source(frame, batch_rows=2), specs, source="evaluation"
    ).features["x"]

    assert feature == NumericReference(edges=(), proportions=(0.0,), missing_rate=1.0)


def test_no_rows_is_an_export_error() -> None:
    empty = pd.DataFrame({"x": np.array([], dtype=np.float64)})

    with pytest.raises(ExportError, match="no rows"):
        reference_distribution(
            frame_source(empty, batch_rows=10),
            [FeatureSpec(name="x", dtype="float")],
            source="training",
        )


def test_export_reference_uses_training_data_and_falls_back_to_evaluation_data() -> None:
    train = pd.DataFrame({"x": np.arange(100.0)})
    holdout = pd.DataFrame({"x": np.arange(1000.0, 1020.0)})
    schema = infer_schema(train, target="none")
    train_source: FrameSource = frame_source(train, batch_rows=64)
    eval_source: FrameSource = frame_source(holdout, batch_rows=64)

    from_training = export_reference(
        schema=schema, train_source=train_source, eval_source=eval_source
    )
    from_evaluation = export_reference(schema=schema, train_source=None, eval_source=eval_source)

    assert (from_training.source, from_training.rows) == ("training", 100)
    assert (from_evaluation.source, from_evaluation.rows) == ("evaluation", 20)
    first = from_evaluation.features["x"]
    assert isinstance(first, NumericReference)
    assert first.edges[0] == 1001.0  # ceil(0.1 * 20) = the 2nd smallest value


def test_show_lines_name_the_source_and_every_feature() -> None:
    reference = ReferenceDistribution(
        source="training",
        rows=4,
        bins=10,
        features={
            "amount": NumericReference(edges=(1.5, 20.0), proportions=(0.5, 0.25, 0.0),
                                       missing_rate=0.25),
            "color": CategoricalReference(shares={"red": 0.75, "blue": 0.25}, missing_rate=0.0),
        },
    )  # fmt: skip

    lines = reference_lines(reference.model_dump(mode="json"))

    assert lines[0].startswith("reference distribution (training data, 4 rows, 10 quantile bins")
    assert "edges [1.5 20]" in lines[1]
    assert "bins [50.0% 25.0% 0.0%]" in lines[1]
    assert lines[1].endswith("missing 25.0%")
    assert "red 75.0%, blue 25.0%" in lines[2]
    assert reference_lines(None) == ["reference distribution: none (exported before drift support)"]
