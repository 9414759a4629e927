"""scikit-learn: joblib files. Loading unpickles, so a runner loads one only after its digest."""

import logging
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import numpy.typing as npt

from services.artifact.adapters.base import FrameworkAdapter, Predictor
from services.errors import ModelNotLoaded

logger = logging.getLogger("services.artifact")


class SklearnPredictor:
    """A fitted scikit-learn classifier with `predict_proba`."""

    def __init__(self, model: Any) -> None:
        self._model = model

    @property
    def n_features(self) -> int | None:
        return int(self._model.n_features_in_)

    @property
    def n_outputs(self) -> int | None:
        return len(self._model.classes_)

    @property
    def classes(self) -> list[Any]:
        return [value.item() if hasattr(value, "item") else value for value in self._model.classes_]

    def predict_proba(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        return np.asarray(self._model.predict_proba(x), dtype=np.float64)


class ForestPredictor(SklearnPredictor):
    """A random forest (or extra trees) classifier, predicted tree by tree directly.

    scikit-learn's own `predict_proba` validates the input, then runs each tree through
    joblib's machinery and the tree's own checks: with 100 trees that costs more than the trees'
    work on a small batch. This does what it does with one worker (`n_jobs=1`, which the loader
    sets), in the same order, on the same float32 input, so the sums, and the output, are the
    same bits; `fast_path_for` proves that on probe rows before it is used.
    """

    def __init__(self, model: Any) -> None:
        super().__init__(model)
        self._trees = [estimator.tree_ for estimator in model.estimators_]
        self._n_classes = int(model.n_classes_)

    def predict_proba(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        rows = np.ascontiguousarray(x, dtype=np.float32)
        total = np.zeros((rows.shape[0], self._n_classes), dtype=np.float64)
        for tree in self._trees:
            total += tree.predict(rows)[:, : self._n_classes]
        total /= len(self._trees)
        return total


def fast_path_for(model: Any) -> SklearnPredictor:
    """The forest fast path where it applies and gives scikit-learn's exact output on probe rows
    (seeded, spread over the features' scale), else the plain predictor."""
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

    plain = SklearnPredictor(model)
    if type(model) not in (RandomForestClassifier, ExtraTreesClassifier):
        return plain
    if getattr(model, "n_outputs_", None) != 1 or model.n_jobs not in (None, 1):
        return plain
    fast = ForestPredictor(model)
    probe = np.random.default_rng(0).normal(size=(64, model.n_features_in_)).astype(np.float32)
    probe *= np.float32(10.0) ** np.arange(-2, 4, dtype=np.float32)[np.arange(64) % 6, None]
    if not np.array_equal(fast.predict_proba(probe), plain.predict_proba(probe)):
        logger.warning("forest fast path differs from scikit-learn's output: not used")
        return plain
    return fast


class SklearnAdapter(FrameworkAdapter):
    framework = "sklearn"
    artifact_suffixes = (".joblib",)

    def save(self, model: Any, directory: Path, *, example: npt.NDArray[np.float32]) -> str:
        name = "model.joblib"
        joblib.dump(model, directory / name, compress=3)
        return name

    def model_format(self, file_name: str) -> str:
        return "joblib"

    def load(self, path: Path) -> Predictor:
        try:
            model = joblib.load(path)
        except Exception as exc:
            raise ModelNotLoaded(f"{path.name} is not a loadable joblib file") from exc
        missing = [
            attr
            for attr in ("predict_proba", "n_features_in_", "classes_")
            if not hasattr(model, attr)
        ]
        if missing:
            raise ModelNotLoaded(
                f"{path.name} is not a fitted scikit-learn classifier (lacks {', '.join(missing)})"
            )
        if "n_jobs" in model.get_params(deep=False):
            # Parallel tree workers add their results in completion order; one worker keeps
            # the floating-point sum, and so the output, identical run after run.
            model.set_params(n_jobs=1)
        return fast_path_for(model)


ADAPTER = SklearnAdapter()
