"""cancer-rf: a scikit-learn random forest on scikit-learn's bundled breast-cancer data set."""

from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier

from training_export import progress
from training_export.recipes.base import Recipe, RecipeData
from training_export.settings import ExportSettings

TREES = 100
TREES_PER_STEP = 10


class CancerRF(Recipe):
    name = "cancer-rf"
    framework = "sklearn"
    description = "scikit-learn random forest on the bundled breast-cancer data set"
    target = "diagnosis"
    classes = ("malignant", "benign")

    def load_data(self, *, seed: int, settings: ExportSettings) -> RecipeData:
        bunch = load_breast_cancer(as_frame=True)
        frame = bunch.data.rename(columns=lambda name: name.replace(" ", "_"))
        frame[self.target] = np.take(self.classes, bunch.target.to_numpy())
        return RecipeData(frame=frame, source="sklearn.datasets.load_breast_cancer")

    def hyperparameters(self, *, seed: int, settings: ExportSettings) -> dict[str, Any]:
        return {
            "n_estimators": TREES,
            "random_state": seed,
            "n_jobs": settings.threads,
            "min_samples_leaf": 1,
            "max_features": "sqrt",
        }

    def fit(
        self,
        x: npt.NDArray[np.float32],
        y: npt.NDArray[np.int64],
        *,
        seed: int,
        settings: ExportSettings,
    ) -> Any:
        params = self.hyperparameters(seed=seed, settings=settings)
        forest = RandomForestClassifier(**{**params, "n_estimators": 0}, warm_start=True)
        with progress.bar("trees", TREES) as advance:
            for trees in range(TREES_PER_STEP, TREES + 1, TREES_PER_STEP):
                forest.set_params(n_estimators=trees)
                forest.fit(x, y)
                advance(TREES_PER_STEP)
        return forest.set_params(warm_start=False, n_jobs=1)
