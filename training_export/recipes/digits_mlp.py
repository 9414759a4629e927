"""digits-mlp: a PyTorch MLP on scikit-learn's bundled digits data set, saved as TorchScript."""

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch
from sklearn.datasets import load_digits
from torch import nn

from services.artifact.adapters.torch_adapter import make_deterministic
from training_export import progress
from training_export.recipes.base import Recipe, RecipeData
from training_export.settings import ExportSettings

PIXELS = 64
HIDDEN = 128
EPOCHS = 40
BATCH = 64
LEARNING_RATE = 1e-3


class DigitsMLP(nn.Module):
    """Raw 0-16 pixel intensities in, ten class logits out; the scaling lives in the model."""

    def __init__(self, pixels: int = PIXELS, hidden: int = HIDDEN, classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(pixels, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x / 16.0)  # type: ignore[no-any-return]


class DigitsRecipe(Recipe):
    name = "digits-mlp"
    framework = "torch"
    description = "PyTorch MLP on the bundled digits data set (64 features, 10 classes)"
    target = "digit"
    classes = tuple(range(10))

    def load_data(self, *, seed: int, settings: ExportSettings) -> RecipeData:
        bunch = load_digits()
        frame = pd.DataFrame(
            bunch.data.astype(np.int64), columns=[f"pixel_{i}" for i in range(PIXELS)]
        )
        frame[self.target] = bunch.target.astype(np.int64)
        return RecipeData(frame=frame, source="sklearn.datasets.load_digits")

    def hyperparameters(self, *, seed: int, settings: ExportSettings) -> dict[str, Any]:
        return {
            "hidden": HIDDEN,
            "epochs": EPOCHS,
            "batch_size": BATCH,
            "learning_rate": LEARNING_RATE,
            "optimizer": "adam",
            "seed": seed,
            "threads": settings.threads,
        }

    def fit(
        self,
        x: npt.NDArray[np.float32],
        y: npt.NDArray[np.int64],
        *,
        seed: int,
        settings: ExportSettings,
    ) -> Any:
        make_deterministic(settings.threads)
        torch.manual_seed(seed)
        model = DigitsMLP()
        optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
        inputs, labels = torch.from_numpy(x), torch.from_numpy(y)
        generator = torch.Generator().manual_seed(seed)
        model.train()
        with progress.bar("epochs", EPOCHS) as advance:
            for _ in range(EPOCHS):
                order = torch.randperm(len(inputs), generator=generator)
                for start in range(0, len(order), BATCH):
                    batch = order[start : start + BATCH]
                    optimizer.zero_grad()
                    loss = nn.functional.cross_entropy(model(inputs[batch]), labels[batch])
                    loss.backward()  # type: ignore[no-untyped-call]
                    optimizer.step()
                advance(1)
        return model.eval()
