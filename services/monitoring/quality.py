"""Live quality of a model version from labelled predictions: accuracy, log loss, ROC-AUC.

Each labelled prediction is (class probabilities, true label). The probabilities are a mapping
class -> probability keyed like the prediction log (`str(class)`), or a sequence in the model's
class order.

* accuracy: the share of rows whose most probable class (the first in class order on a tie, as
  served) is the label;
* log loss: the mean of -ln(p_label), each p clipped to [eps, 1 - eps] with eps the float64
  machine epsilon, as scikit-learn does;
* ROC-AUC: two classes only (None otherwise, and while either class has no label yet): the chance
  that a positive row (the second class, as at export) scores above a negative one, ties half.

Accuracy and log loss take constant memory; ROC-AUC keeps 9 bytes per labelled row. Pairs that
cannot be scored (a label outside the classes; probabilities missing a class, outside [0, 1] or
not numbers) are left out and counted in `skipped`.
"""

import math
from array import array
from collections.abc import Iterable, Mapping, Sequence
from numbers import Real

import numpy as np
from pydantic import BaseModel, ConfigDict

from services.artifact.schema import ClassLabel

CLIP_EPSILON = float(np.finfo(np.float64).eps)
Probabilities = Mapping[str, object] | Sequence[object]


class QualityReport(BaseModel):
    """Quality of one model version over a set of labelled predictions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    labelled: int
    skipped: int = 0
    accuracy: float | None = None
    log_loss: float | None = None
    roc_auc: float | None = None


def quality_report(
    pairs: Iterable[tuple[Probabilities, object]], classes: Sequence[ClassLabel]
) -> QualityReport:
    """Accuracy, log loss and binary ROC-AUC of (probabilities, label) pairs."""
    labelled = LabelledPredictions(classes)
    for probabilities, label in pairs:
        labelled.add(probabilities, label)
    return labelled.report()


def class_key(value: object) -> str:
    """Labels compare by text, as the prediction log keys them: 1, 1.0 and "1" are one class."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class LabelledPredictions:
    """Running sums over labelled predictions, for one model version's classes."""

    def __init__(self, classes: Sequence[ClassLabel]) -> None:
        if len(classes) < 2:
            raise ValueError("a classifier has at least two classes")
        self._keys = [class_key(label) for label in classes]
        self._index = {key: i for i, key in enumerate(self._keys)}
        self.labelled = 0
        self.skipped = 0
        self._correct = 0
        self._loss = 0.0
        self._scores = array("d")
        self._positive = array("b")

    def add(self, probabilities: Probabilities, label: object) -> bool:
        """Count one pair; False (and counted as skipped) when it cannot be scored."""
        truth = self._index.get(class_key(label))
        row = self._row(probabilities)
        if truth is None or row is None:
            self.skipped += 1
            return False
        self.labelled += 1
        self._correct += int(max(range(len(row)), key=row.__getitem__) == truth)
        self._loss -= math.log(min(max(row[truth], CLIP_EPSILON), 1.0 - CLIP_EPSILON))
        if len(row) == 2:
            self._scores.append(row[1])
            self._positive.append(truth)
        return True

    def report(self) -> QualityReport:
        """The metrics so far; None where they are not defined yet."""
        if self.labelled == 0:
            return QualityReport(labelled=0, skipped=self.skipped)
        return QualityReport(
            labelled=self.labelled,
            skipped=self.skipped,
            accuracy=self._correct / self.labelled,
            log_loss=self._loss / self.labelled,
            roc_auc=self._roc_auc(),
        )

    def _row(self, probabilities: Probabilities) -> list[float] | None:
        if isinstance(probabilities, Mapping):
            if {str(key) for key in probabilities} != set(self._keys):
                return None
            values = [probabilities[key] for key in self._keys]
        elif isinstance(probabilities, str) or len(probabilities) != len(self._keys):
            return None
        else:
            values = list(probabilities)
        row = [p for p in map(_probability, values) if p is not None]
        return row if len(row) == len(self._keys) else None

    def _roc_auc(self) -> float | None:
        """Mann-Whitney U over average ranks (tied scores share their mean rank)."""
        if len(self._keys) != 2:
            return None
        positive = np.frombuffer(self._positive, dtype=np.int8).astype(bool)
        positives = int(positive.sum())
        negatives = len(positive) - positives
        if positives == 0 or negatives == 0:
            return None
        scores = np.frombuffer(self._scores, dtype=np.float64)
        _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
        ends = np.cumsum(counts)
        mean_ranks = (ends - counts + 1 + ends) / 2.0
        rank_sum = float(mean_ranks[inverse][positive].sum())
        return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def _probability(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, Real):
        return None
    number = float(value)
    return number if 0.0 <= number <= 1.0 else None
