"""XGBoost: the native JSON or UBJ model format, which loads without executing code."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from services.artifact.adapters.base import FrameworkAdapter, Predictor
from services.errors import ModelNotLoaded

PROBABILITY_OBJECTIVES = ("binary:logistic", "multi:softprob")


class XGBoostPredictor:
    """A Booster trained with a probability objective."""

    def __init__(self, booster: xgb.Booster, *, objective: str, n_classes: int):
        self._booster = booster
        self._objective = objective
        self._n_classes = n_classes

    @property
    def n_features(self) -> int | None:
        return int(self._booster.num_features())

    @property
    def n_outputs(self) -> int | None:
        return self._n_classes

    def predict_proba(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        raw = np.asarray(self._booster.inplace_predict(x, validate_features=False))
        scores = raw.astype(np.float64)
        if self._objective == "binary:logistic":
            return np.stack([1.0 - scores, scores], axis=1)
        return scores.reshape(x.shape[0], self._n_classes)


class XGBoostAdapter(FrameworkAdapter):
    framework = "xgboost"
    artifact_suffixes = (".json", ".ubj")

    def save(self, model: Any, directory: Path, *, example: npt.NDArray[np.float32]) -> str:
        booster = model.get_booster() if hasattr(model, "get_booster") else model
        name = "model.json"
        booster.save_model(str(directory / name))
        return name

    def model_format(self, file_name: str) -> str:
        return "xgboost-ubj" if file_name.lower().endswith(".ubj") else "xgboost-json"

    def load(self, path: Path) -> Predictor:
        booster = xgb.Booster()
        try:
            booster.load_model(str(path))
            config = json.loads(booster.save_config())
        except (xgb.core.XGBoostError, ValueError, OSError) as exc:
            raise ModelNotLoaded(f"{path.name} is not a loadable XGBoost model") from exc
        # One thread: per-row results do not depend on it, and the runner batches instead.
        booster.set_param({"nthread": 1})
        objective = config["learner"]["objective"]["name"]
        if objective not in PROBABILITY_OBJECTIVES:
            raise ModelNotLoaded(
                f"{path.name} has objective {objective!r}; expected one of "
                f"{', '.join(PROBABILITY_OBJECTIVES)}"
            )
        n_classes = 2
        if objective == "multi:softprob":
            n_classes = int(config["learner"]["learner_model_param"]["num_class"])
        return XGBoostPredictor(booster, objective=objective, n_classes=n_classes)


ADAPTER = XGBoostAdapter()
