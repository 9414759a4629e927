"""The framework-independent part of a runner: load and verify models, predict grouped batches."""

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from services.artifact.loader import VerifiedModel, load_verified
from services.errors import AppError, ModelNotFound, ModelNotLoaded
from services.runners.protocol import PredictItem, PredictOutput

logger = logging.getLogger("services.runners")


class RunnerCore:
    """Models of one framework, each loaded once and checked against its export record."""

    def __init__(
        self, framework: str, stored_models: Iterable[Any], *, golden_tolerance: float = 0.0
    ) -> None:
        self.framework = framework
        self.golden_tolerance = golden_tolerance
        self.models: dict[str, VerifiedModel] = {}
        for stored in stored_models:
            self._load(stored)

    def _load(self, stored: Any) -> None:
        name, version = stored.tag.name, str(stored.tag.version)
        framework = stored.info.labels.get("framework")
        if framework != self.framework:
            raise ModelNotLoaded(f"{stored.tag} is a {framework} model, not {self.framework}")
        try:
            model = load_verified(
                Path(stored.path),
                stored.info.metadata,
                name=name,
                version=version,
                golden_tolerance=self.golden_tolerance,
            )
        except AppError as exc:
            # One line with everything a failed deployment needs: model, tag, reason.
            logger.critical(
                "refusing to start: model %s, tag %s: %s: %s",
                name,
                stored.tag,
                exc.error_code,
                exc.message,
                extra={"model": name, "tag": str(stored.tag), "reason": exc.error_code},
            )
            raise
        self.models[model.tag] = model
        logger.info(
            "loaded %s: digests and %d golden examples verified",
            model.tag,
            len(model.metadata.golden_examples.inputs),
        )

    def predict_matrix(self, tag: str, matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """Probabilities for one model's encoded rows (a batch job's chunk)."""
        model = self.models.get(tag)
        if model is None:
            raise ModelNotFound(f"model {tag} is not served by the {self.framework} runner")
        return np.asarray(model.predictor.predict_proba(matrix), dtype=np.float64)

    def predict(self, items: list[PredictItem]) -> list[PredictOutput]:
        """One predict call per model over all its rows in the batch, split back per item."""
        outputs: list[PredictOutput | None] = [None] * len(items)
        by_model: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            by_model.setdefault(item.model, []).append(index)
        for tag, indexes in by_model.items():
            model = self.models.get(tag)
            if model is None:
                raise ModelNotFound(f"model {tag} is not served by the {self.framework} runner")
            matrix = np.asarray([row for i in indexes for row in items[i].rows], dtype=np.float32)
            probabilities = model.predictor.predict_proba(matrix).tolist()
            start = 0
            for i in indexes:
                count = len(items[i].rows)
                outputs[i] = PredictOutput(probabilities=probabilities[start : start + count])
                start += count
        return [output for output in outputs if output is not None]
