"""Holdout metrics for classifiers, computed from class probabilities."""

import numpy as np
import numpy.typing as npt
from sklearn import metrics


def classification_metrics(
    y_true: npt.NDArray[np.int64], probabilities: npt.NDArray[np.float64]
) -> dict[str, float]:
    """Accuracy, F1, log loss and ROC AUC; binary tasks add average precision and positive F1."""
    n_classes = probabilities.shape[1]
    labels = np.arange(n_classes)
    predicted = probabilities.argmax(axis=1)
    result = {
        "accuracy": metrics.accuracy_score(y_true, predicted),
        "f1_macro": metrics.f1_score(
            y_true, predicted, average="macro", labels=labels, zero_division=0
        ),
        "log_loss": metrics.log_loss(y_true, probabilities, labels=labels),
    }
    present = np.unique(y_true)
    if n_classes == 2 and len(present) == 2:
        result["roc_auc"] = metrics.roc_auc_score(y_true, probabilities[:, 1])
        result["average_precision"] = metrics.average_precision_score(y_true, probabilities[:, 1])
        result["f1_positive"] = metrics.f1_score(y_true, predicted, zero_division=0)
    elif n_classes > 2 and len(present) == n_classes:
        result["roc_auc_ovr"] = metrics.roc_auc_score(
            y_true, probabilities, multi_class="ovr", labels=labels
        )
    return {name: float(value) for name, value in result.items()}
