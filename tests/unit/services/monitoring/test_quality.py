"""Live quality metrics, cross-checked against scikit-learn on the same labelled predictions."""

import math

import numpy as np
import pytest
from sklearn import metrics

from services.monitoring.quality import LabelledPredictions, quality_report


def predictions(rows: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities that lean towards the true class, so the metrics are far from chance."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, rows)
    logits = rng.normal(0.0, 1.0, (rows, classes))
    logits[np.arange(rows), truth] += 1.2
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probabilities, truth


def test_binary_metrics_match_scikit_learn() -> None:
    probabilities, truth = predictions(rows=500, classes=2, seed=0)
    classes = ["malignant", "benign"]

    report = quality_report(
        ((row.tolist(), classes[t]) for row, t in zip(probabilities, truth, strict=True)), classes
    )

    assert report.labelled == 500
    assert report.accuracy == metrics.accuracy_score(truth, probabilities.argmax(axis=1))
    assert report.log_loss == pytest.approx(
        metrics.log_loss(truth, probabilities, labels=[0, 1]), rel=1e-12
    )
    assert report.roc_auc == pytest.approx(
        metrics.roc_auc_score(truth, probabilities[:, 1]), rel=1e-12
    )
    assert 0.7 < report.roc_auc < 1.0


def test_multiclass_has_accuracy_and_log_loss_but_no_roc_auc() -> None:
    probabilities, truth = predictions(rows=300, classes=4, seed=1)

    report = quality_report(zip(probabilities.tolist(), truth.tolist(), strict=True), range(4))

    assert report.accuracy == metrics.accuracy_score(truth, probabilities.argmax(axis=1))
    assert report.log_loss == pytest.approx(
        metrics.log_loss(truth, probabilities, labels=range(4)), rel=1e-12
    )
    assert report.roc_auc is None


def test_tied_scores_count_half_as_in_scikit_learn() -> None:
    probabilities, truth = predictions(rows=400, classes=2, seed=2)
    positive = np.round(probabilities[:, 1], 1)  # many ties
    rows = np.stack([1.0 - positive, positive], axis=1)

    report = quality_report(zip(rows.tolist(), truth.tolist(), strict=True), [0, 1])

    assert report.roc_auc == pytest.approx(metrics.roc_auc_score(truth, positive), rel=1e-12)


def test_certain_wrong_answers_are_clipped_like_scikit_learn() -> None:
    rows = [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [1.0, 0.0]]
    truth = [1, 1, 0, 0]

    report = quality_report(zip(rows, truth, strict=True), [0, 1])

    assert report.log_loss == pytest.approx(
        metrics.log_loss(truth, np.array(rows), labels=[0, 1]), rel=1e-12
    )
    assert report.log_loss is not None
    assert math.isfinite(report.log_loss)


def test_probabilities_as_the_prediction_log_keys_them_equal_the_list_form() -> None:
    probabilities, truth = predictions(rows=50, classes=3, seed=3)
    classes = [3, 7, 9]
    as_lists = [(row.tolist(), classes[t]) for row, t in zip(probabilities, truth, strict=True)]
    as_logged = [
        ({str(c): p for c, p in reversed(list(zip(classes, row, strict=True)))}, label)
        for row, label in as_lists
    ]

    assert quality_report(as_logged, classes) == quality_report(as_lists, classes)


def test_labels_match_classes_by_text() -> None:
    report = quality_report([([0.2, 0.8], 1.0), ([0.2, 0.8], "1"), ([0.9, 0.1], True)], [0, 1])

    assert (report.labelled, report.accuracy) == (3, 2 / 3)


def test_pairs_that_cannot_be_scored_are_skipped_and_counted() -> None:
    good = [([0.3, 0.7], 1), ([0.6, 0.4], 0), ([0.2, 0.8], 0)]
    bad = [
        ([0.3, 0.7], 2),  # not a class
        ({"0": 0.3}, 1),  # a class missing
        ([0.3, 1.7], 1),  # not a probability
        ([float("nan"), 0.5], 1),
        ([True, False], 0),
        ("ab", 0),
    ]

    report = quality_report([*good, *bad], [0, 1])

    assert (report.labelled, report.skipped) == (3, 6)
    assert report == quality_report(good, [0, 1]).model_copy(update={"skipped": 6})


def test_roc_auc_waits_for_both_classes() -> None:
    report = quality_report([([0.3, 0.7], 1), ([0.6, 0.4], 1)], [0, 1])

    assert report.roc_auc is None
    assert report.accuracy == 0.5


def test_no_labels_gives_no_metrics() -> None:
    report = LabelledPredictions(["a", "b"]).report()

    assert report.model_dump() == {
        "labelled": 0,
        "skipped": 0,
        "accuracy": None,
        "log_loss": None,
        "roc_auc": None,
    }


def test_a_tie_predicts_the_first_class_as_served() -> None:
    report = quality_report([([0.5, 0.5], "a"), ([0.5, 0.5], "b")], ["a", "b"])

    assert report.accuracy == 0.5


def test_numpy_floats_are_accepted() -> None:
    row = np.array([0.25, 0.75], dtype=np.float32)

    report = quality_report([(list(row), 1)], [0, 1])

    assert report.labelled == 1
    assert report.log_loss == pytest.approx(-np.log(0.75))
