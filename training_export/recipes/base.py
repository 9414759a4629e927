"""What a reference recipe provides: its data and how to fit a model to it."""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from services.artifact.schema import ClassLabel
from training_export.settings import ExportSettings


@dataclass(frozen=True)
class RecipeData:
    """A whole labelled data set and where it came from."""

    frame: pd.DataFrame
    source: str


class Recipe(ABC):
    """One reference model: data -> train. Evaluation and export are shared."""

    name: ClassVar[str]
    framework: ClassVar[str]
    description: ClassVar[str]
    target: ClassVar[str]
    classes: ClassVar[tuple[ClassLabel, ...]]

    @abstractmethod
    def load_data(self, *, seed: int, settings: ExportSettings) -> RecipeData:
        """The full labelled data set (features in schema order, then the target)."""

    @abstractmethod
    def hyperparameters(self, *, seed: int, settings: ExportSettings) -> dict[str, Any]:
        """Everything that shapes training besides the data, recorded in the model's metadata."""

    @abstractmethod
    def fit(
        self,
        x: npt.NDArray[np.float32],
        y: npt.NDArray[np.int64],
        *,
        seed: int,
        settings: ExportSettings,
    ) -> Any:
        """Train on the encoded matrix and class indices; return the framework's model object."""
