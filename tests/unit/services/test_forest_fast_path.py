"""The forest fast path gives scikit-learn's own output, bit for bit, and stands aside where it
cannot promise that."""

from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    RandomForestClassifier,
)

from services.artifact.adapters.sklearn_adapter import ForestPredictor, fast_path_for


def _data(rows: int, features: int = 12, classes: int = 3, seed: int = 0) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype(np.float32) * 5
    y = (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 2).astype(int)
    return x, y[:rows] % classes


@pytest.mark.parametrize("forest", [RandomForestClassifier, ExtraTreesClassifier])
@pytest.mark.parametrize("rows", [1, 7, 300])
def test_the_fast_path_equals_predict_proba_exactly(forest: Any, rows: int) -> None:
    x, y = _data(500)
    model = forest(n_estimators=40, random_state=0, n_jobs=1).fit(x, y)
    probe, _ = _data(rows, seed=rows)

    predictor = fast_path_for(model)

    assert isinstance(predictor, ForestPredictor)
    assert np.array_equal(predictor.predict_proba(probe), model.predict_proba(probe))
    # float64 input and a non-contiguous view are converted the way scikit-learn converts them
    wide = probe.astype(np.float64)
    assert np.array_equal(predictor.predict_proba(wide), model.predict_proba(wide))
    assert np.array_equal(predictor.predict_proba(probe[::-1]), model.predict_proba(probe[::-1]))


def test_other_estimators_keep_scikit_learns_predict_proba() -> None:
    x, y = _data(200)
    boosted = GradientBoostingClassifier(n_estimators=5, random_state=0).fit(x, y)
    parallel = RandomForestClassifier(n_estimators=5, random_state=0, n_jobs=2).fit(x, y)
    multi = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, np.stack([y, y], 1))

    for model in (boosted, parallel, multi):
        assert not isinstance(fast_path_for(model), ForestPredictor)


def test_a_fast_path_that_would_differ_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = _data(200)
    model = RandomForestClassifier(n_estimators=5, random_state=0, n_jobs=1).fit(x, y)
    exact = ForestPredictor.predict_proba
    monkeypatch.setattr(
        ForestPredictor, "predict_proba", lambda self, rows: exact(self, rows) + 1e-12
    )

    assert not isinstance(fast_path_for(model), ForestPredictor)
