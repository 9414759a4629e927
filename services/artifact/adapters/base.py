"""The adapter interface: save a trained model, load it back, predict class probabilities."""

import importlib
import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from services.errors import InvalidFeatureSchema

FRAMEWORKS = ("sklearn", "xgboost", "torch")
_MODULES = {
    "sklearn": "services.artifact.adapters.sklearn_adapter",
    "xgboost": "services.artifact.adapters.xgboost_adapter",
    "torch": "services.artifact.adapters.torch_adapter",
}


class Predictor(Protocol):
    """A loaded model; identical rows give identical outputs whatever batch they arrive in."""

    @property
    def n_features(self) -> int | None: ...

    @property
    def n_outputs(self) -> int | None: ...

    def predict_proba(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]: ...


class FrameworkAdapter(ABC):
    """Saves and loads one framework's models in a format that suits serving."""

    framework: ClassVar[str]
    artifact_suffixes: ClassVar[tuple[str, ...]]

    @abstractmethod
    def save(self, model: Any, directory: Path, *, example: npt.NDArray[np.float32]) -> str:
        """Write a trained model into `directory`; return the artifact's file name.

        `example` holds a few encoded input rows, for formats that trace the model.
        """

    @abstractmethod
    def load(self, path: Path) -> Predictor:
        """Load an artifact file; raise ModelNotLoaded when it cannot be loaded.

        The predictor runs a batch as it comes; how batches are shaped so that a row's output
        does not depend on its batch is the execution plan's business (services.artifact.execution).
        """

    @abstractmethod
    def model_format(self, file_name: str) -> str:
        """The format of an artifact file, by its name, as recorded in the metadata."""

    def kernels(self) -> str | None:
        """What this process computes with, where float results depend on it (None: they don't).

        Tree ensembles add fixed leaf values in a fixed order and give the same bits on every
        x86-64 CPU; float32 matrix products take a different instruction set per CPU (AVX2,
        AVX-512, AMX) and per device, and round differently.
        """
        return None

    def artifact_name(self, source: Path) -> str:
        """The canonical file name for a model file brought by a user."""
        suffix = source.suffix.lower()
        if suffix not in self.artifact_suffixes:
            allowed = ", ".join(self.artifact_suffixes)
            raise InvalidFeatureSchema(
                f"a {self.framework} model file must end in one of: {allowed} (got {source.name})"
            )
        return f"model{suffix}"

    def adopt(self, source: Path, directory: Path) -> str:
        """Copy a model file brought by a user into `directory`; return its artifact name."""
        name = self.artifact_name(source)
        shutil.copyfile(source, directory / name)
        return name


def get_adapter(framework: str) -> FrameworkAdapter:
    """The adapter for `framework`; imports only that framework."""
    try:
        module = importlib.import_module(_MODULES[framework])
    except KeyError:
        known = ", ".join(FRAMEWORKS)
        raise InvalidFeatureSchema(f"unknown framework {framework!r}; known: {known}") from None
    adapter: FrameworkAdapter = module.ADAPTER
    return adapter


def check_width(predictor: Predictor, width: int) -> None:
    """Refuse a schema whose feature count differs from the model's input width."""
    if predictor.n_features is None:
        # The format does not declare its width (TorchScript): a probe row tells.
        try:
            predictor.predict_proba(np.zeros((1, width), dtype=np.float32))
        except Exception as exc:
            raise InvalidFeatureSchema(
                f"the model rejects an input of {width} features, the schema's width"
            ) from exc
    elif predictor.n_features != width:
        raise InvalidFeatureSchema(
            f"the feature schema has {width} features but the model takes {predictor.n_features}"
        )


def check_classes(predictor: Predictor, n_classes: int) -> None:
    """Refuse an output schema whose class count differs from the model's outputs."""
    if predictor.n_outputs is not None and predictor.n_outputs != n_classes:
        raise InvalidFeatureSchema(
            f"the output schema has {n_classes} classes but the model returns {predictor.n_outputs}"
        )
