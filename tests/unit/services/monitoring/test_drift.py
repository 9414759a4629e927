"""PSI between a reference distribution and served inputs: buckets, smoothing, statuses."""

import math
from collections.abc import Iterator, Mapping

import numpy as np
import pytest

from services.artifact.reference import (
    CategoricalReference,
    NumericReference,
    ReferenceDistribution,
)
from services.monitoring.drift import (
    ROWS_PER_BATCH,
    ObservedInputs,
    drift_report,
    drift_status,
    population_stability_index,
)


def reference(**features: NumericReference | CategoricalReference) -> ReferenceDistribution:
    return ReferenceDistribution(source="training", rows=1000, bins=10, features=features)


QUARTERS = NumericReference(edges=(1.0, 2.0), proportions=(0.25, 0.5, 0.25), missing_rate=0.0)
COLORS = CategoricalReference(shares={"a": 0.5, "b": 0.5}, missing_rate=0.0)


def test_psi_of_a_small_case_matches_the_hand_computation() -> None:
    # bins (-inf, 1], (1, 2], (2, inf): 5, 3 and 2 of 10 rows against 25%, 50%, 25%:
    # (0.5-0.25)ln(0.5/0.25) + (0.3-0.5)ln(0.3/0.5) + (0.2-0.25)ln(0.2/0.25)
    # = 0.173287 + 0.102165 + 0.011157 = 0.286609; the missing bucket is empty on both sides
    rows = [{"x": v} for v in (0.0, 1.0, -5.0, 0.5, 1.0, 1.5, 2.0, 1.2, 2.5, 100.0)]

    report = drift_report(reference(x=QUARTERS), rows)

    (feature,) = report.features
    assert feature.psi == pytest.approx(0.286609, abs=1e-6)
    assert (feature.status, report.status, report.rows) == ("alert", "alert", 10)


def test_an_unseen_category_lands_in_other_and_empty_buckets_are_smoothed() -> None:
    # a: 2/4 vs 0.5 -> 0; b: 1/4 vs 0.5 -> (0.25-0.5)ln(0.5) = 0.173287;
    # other: 1/4 vs 0 (smoothed to 1e-4) -> (0.25-0.0001)ln(0.25/0.0001) = 1.955229
    rows = [{"c": "a"}, {"c": "b"}, {"c": "a"}, {"c": "zebra"}]

    (feature,) = drift_report(reference(c=COLORS), rows).features

    assert feature.psi == pytest.approx(2.128516, abs=1e-6)
    assert (feature.unseen, feature.missing) == (1, 0)


def test_values_on_an_edge_belong_to_the_bin_below_and_outer_bins_are_open() -> None:
    observed = ObservedInputs(reference(x=QUARTERS))
    observed.add_columns({"x": np.array([1.0, 2.0, -math.inf, math.inf, 1e300])})

    psi_of = population_stability_index
    expected = psi_of([0.25, 0.5, 0.25, 0.0], [2 / 5, 1 / 5, 2 / 5, 0.0])

    assert observed.report().features[0].psi == pytest.approx(expected, rel=1e-12)


def test_missing_values_are_their_own_bucket_and_identical_shares_give_zero() -> None:
    ref = reference(
        x=NumericReference(edges=(1.0,), proportions=(0.5, 0.25), missing_rate=0.25),
        c=CategoricalReference(shares={"a": 0.75}, missing_rate=0.25),
    )
    rows: list[Mapping[str, object]] = [
        {"x": 0.0, "c": "a"},
        {"x": 1.0, "c": "a"},
        {"x": 7.0, "c": None},
        {"c": "a"},  # x absent counts as missing
    ]

    report = drift_report(ref, rows)

    assert [(f.name, f.psi, f.missing) for f in report.features] == [("x", 0.0, 1), ("c", 0.0, 1)]
    assert report.status == "ok"


def test_booleans_are_counted_as_false_and_true() -> None:
    ref = reference(flag=CategoricalReference(shares={"false": 0.5, "true": 0.5}, missing_rate=0))

    report = drift_report(ref, [{"flag": True}, {"flag": False}, {"flag": np.True_}, {"flag": 0}])

    (feature,) = report.features
    assert feature.unseen == 1  # 0 is not a bool: the validated log never holds it
    assert feature.psi == pytest.approx(
        population_stability_index([0.5, 0.5, 0.0, 0.0], [0.25, 0.5, 0.25, 0.0])
    )


def test_wrong_types_for_a_number_count_as_missing_and_are_reported() -> None:
    report = drift_report(reference(x=QUARTERS), [{"x": "7"}, {"x": True}, {"x": 1}, {"x": None}])

    (feature,) = report.features
    assert (feature.missing, feature.invalid) == (3, 2)


@pytest.mark.parametrize(
    ("psi", "status"),
    [(0.0, "ok"), (0.0999, "ok"), (0.1, "warn"), (0.2499, "warn"), (0.25, "alert"), (3.0, "alert")],
)
def test_status_thresholds_are_0_1_and_0_25(psi: float, status: str) -> None:
    assert drift_status(psi) == status


def test_overall_status_is_the_worst_feature_status() -> None:
    rows = [{"x": 1.5, "c": "a"}, {"x": 0.5, "c": "b"}, {"x": 1.7, "c": "a"}, {"x": 3.0, "c": "b"}]

    report = drift_report(reference(x=QUARTERS, c=COLORS), rows)

    assert [f.status for f in report.features] == ["ok", "ok"]
    assert report.status == "ok"
    shifted = drift_report(reference(x=QUARTERS, c=COLORS), [*rows, {"x": 9.0, "c": "a"}] * 3)
    assert [f.status for f in shifted.features] == ["warn", "ok"]
    assert shifted.status == "warn"


def test_a_model_without_a_reference_says_so_and_reads_no_rows() -> None:
    def rows() -> Iterator[Mapping[str, object]]:
        raise AssertionError("rows were read")
        yield {}

    report = drift_report(None, rows())

    assert report.status == "no_reference"
    assert report.features == ()
    assert report.message is not None
    assert "exported before drift support" in report.message


def test_no_rows_is_no_data_rather_than_a_psi() -> None:
    report = drift_report(reference(x=QUARTERS), [])

    assert (report.status, report.rows, report.features) == ("no_data", 0, ())
    assert (report.reference_source, report.reference_rows) == ("training", 1000)


def test_rows_and_columns_in_any_batching_give_the_same_report() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(1.5, 1.0, ROWS_PER_BATCH * 2 + 17)
    colors = rng.choice(["a", "b", "c"], len(values))
    rows = [{"x": float(v), "c": str(c)} for v, c in zip(values, colors, strict=True)]
    ref = reference(x=QUARTERS, c=COLORS)

    by_rows = drift_report(ref, iter(rows))
    by_columns = ObservedInputs(ref)
    for start in range(0, len(rows), 1000):
        by_columns.add_columns(
            {"x": values[start : start + 1000], "c": list(colors[start : start + 1000])}
        )

    assert by_rows == by_columns.report()
    assert by_rows.rows == len(rows)


def test_columns_of_different_lengths_are_refused() -> None:
    observed = ObservedInputs(reference(x=QUARTERS, c=COLORS))

    with pytest.raises(ValueError, match="differ in length"):
        observed.add_columns({"x": [1.0, 2.0], "c": ["a"]})


def test_psi_is_symmetric_in_its_terms_and_zero_only_for_equal_shares() -> None:
    a, b = [0.2, 0.3, 0.5], [0.5, 0.3, 0.2]

    assert population_stability_index(a, b) == pytest.approx(population_stability_index(b, a))
    assert population_stability_index(a, b) > 0
    assert population_stability_index(a, a) == 0.0
