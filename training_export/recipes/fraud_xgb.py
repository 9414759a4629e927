"""fraud-xgb: XGBoost on a seeded synthetic card-transaction data set, written to Parquet."""

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import xgboost as xgb

from training_export import progress
from training_export.recipes.base import Recipe, RecipeData
from training_export.settings import ExportSettings

ROWS = 20_000
MERCHANT_CATEGORIES = (
    "grocery", "gas_station", "restaurant", "online_retail",
    "electronics", "travel", "entertainment", "pharmacy",
)  # fmt: skip
CATEGORY_SHARE = (0.22, 0.14, 0.18, 0.16, 0.08, 0.06, 0.10, 0.06)
CATEGORY_SPEND = (1.0, 0.8, 0.7, 1.3, 3.0, 4.0, 1.1, 0.6)
CATEGORY_RISK = (-0.4, 0.1, -0.3, 0.9, 1.1, 0.8, 0.0, -0.5)
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 1, 2, 4, 6, 7, 7, 8, 9, 8, 7, 7, 8, 9, 9, 8, 6, 4, 3, 2)


def generate_transactions(seed: int, rows: int = ROWS) -> pd.DataFrame:
    """Card transactions with named, typed features and a rare `is_fraud` label (about 1-2%)."""
    rng = np.random.default_rng(seed)
    category = rng.choice(len(MERCHANT_CATEGORIES), size=rows, p=CATEGORY_SHARE)
    amount = np.round(rng.lognormal(3.3, 0.9, rows) * np.take(CATEGORY_SPEND, category), 2)
    hours = np.asarray(HOUR_WEIGHTS, dtype=np.float64)
    hour = rng.choice(24, size=rows, p=hours / hours.sum())
    distance = np.round(rng.exponential(9.0, rows), 2)
    online = category == MERCHANT_CATEGORIES.index("online_retail")
    card_present = rng.random(rows) < np.where(online, 0.02, 0.88)
    txn_count_1h = rng.poisson(0.5, rows)
    account_age_days = rng.integers(1, 3651, rows)
    is_foreign = rng.random(rows) < 0.04
    logit = (
        -4.6
        + 0.9 * (np.log(amount) - 3.5)
        + 1.6 * (hour < 5)
        + 0.03 * distance
        + 0.8 * txn_count_1h
        - 1.6 * card_present
        + 1.8 * is_foreign
        + np.take(CATEGORY_RISK, category)
        - 0.0004 * account_age_days
        + rng.normal(0.0, 0.4, rows)
    )
    is_fraud = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))
    return pd.DataFrame(
        {
            "amount": amount,
            "hour": hour.astype(np.int64),
            "merchant_category": np.take(MERCHANT_CATEGORIES, category),
            "distance_from_home_km": distance,
            "txn_count_1h": txn_count_1h.astype(np.int64),
            "card_present": card_present,
            "account_age_days": account_age_days.astype(np.int64),
            "is_foreign": is_foreign,
            "is_fraud": is_fraud.astype(np.int64),
        }
    )


class FraudXGB(Recipe):
    name = "fraud-xgb"
    framework = "xgboost"
    description = "XGBoost binary classifier on synthetic card transactions (Parquet)"
    target = "is_fraud"
    classes = (0, 1)

    def load_data(self, *, seed: int, settings: ExportSettings) -> RecipeData:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path = settings.data_dir / f"fraud-transactions-seed{seed}.parquet"
        generate_transactions(seed).to_parquet(path, index=False)
        return RecipeData(frame=pd.read_parquet(path), source=path.name)

    def hyperparameters(self, *, seed: int, settings: ExportSettings) -> dict[str, Any]:
        return {
            "objective": "binary:logistic",
            "eval_metric": "logloss",
            "tree_method": "hist",
            "max_depth": 4,
            "eta": 0.1,
            "subsample": 0.9,
            "colsample_bytree": 0.9,
            "seed": seed,
            "nthread": settings.threads,
            "num_boost_round": 200,
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
        rounds = params.pop("num_boost_round")
        with progress.bar("boosting rounds", rounds) as advance:
            return xgb.train(
                params,
                xgb.DMatrix(x, label=y),
                num_boost_round=rounds,
                callbacks=[_Progress(advance)],
            )


class _Progress(xgb.callback.TrainingCallback):
    def __init__(self, advance: progress.Advance) -> None:
        super().__init__()
        self._advance = advance

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        self._advance(1)
        return False
