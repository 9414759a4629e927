"""scikit-learn: joblib files. Loading unpickles, so a runner loads one only after its digest."""

from pathlib import Path
from typing import Any

import joblib
import numpy as np
import numpy.typing as npt

from services.artifact.adapters.base import FrameworkAdapter, Predictor
from services.errors import ModelNotLoaded


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
        return SklearnPredictor(model)


ADAPTER = SklearnAdapter()
