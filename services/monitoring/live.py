"""Monitoring reports read from the prediction log over a window: drift of the served inputs
per version, live quality per version, and shadow versions compared with production.

Each report reads at most `max_rows` rows, newest first, as a stream (constant memory), and
says how many it read and whether it stopped at the limit (`sampled`).
"""

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories import monitoring as repository
from services.artifact.reference import ReferenceDistribution
from services.artifact.schema import ClassLabel
from services.monitoring.drift import ROWS_PER_BATCH, DriftReport, ObservedInputs, drift_report
from services.monitoring.quality import LabelledPredictions, QualityReport
from services.monitoring.windows import Window

Sessions = async_sessionmaker[AsyncSession]


class WindowDrift(BaseModel):
    """Drift of each version's reference against the model's inputs over one window."""

    model_config = ConfigDict(frozen=True)

    rows: int
    sampled: bool
    versions: dict[str, DriftReport]


async def drift_over_window(
    sessions: Sessions,
    *,
    model_name: str,
    references: Mapping[str, ReferenceDistribution | None],
    window: Window,
    max_rows: int,
) -> WindowDrift:
    """One pass over the model's served inputs (whichever version answered them: the input
    distribution does not depend on it), counted against every version's reference."""
    observed = {
        version: ObservedInputs(reference)
        for version, reference in references.items()
        if reference is not None
    }
    rows = 0
    batch: list[dict[str, Any]] = []
    async with sessions() as session:
        async for inputs in repository.stream_inputs(
            session=session,
            model_name=model_name,
            start=window.start,
            end=window.end,
            limit=max_rows,
        ):
            batch.append(inputs)
            if len(batch) == ROWS_PER_BATCH:
                rows += _count(observed.values(), batch)
    rows += _count(observed.values(), batch)
    reports = {
        version: observed[version].report() if version in observed else drift_report(None, [])
        for version in references
    }
    return WindowDrift(rows=rows, sampled=rows >= max_rows, versions=reports)


def _count(observed: Any, batch: list[dict[str, Any]]) -> int:
    for inputs in observed:
        inputs.add_rows(batch)
    size = len(batch)
    batch.clear()
    return size


class VersionQuality(BaseModel):
    """Live quality of one version: as served to callers, and as a shadow (scored against the
    labels of the production predictions it shadowed)."""

    model_config = ConfigDict(frozen=True)

    served: QualityReport
    shadow: QualityReport | None = None


class WindowQuality(BaseModel):
    model_config = ConfigDict(frozen=True)

    rows: int
    sampled: bool
    versions: dict[str, VersionQuality]


async def quality_over_window(
    sessions: Sessions,
    *,
    model_name: str,
    classes: Mapping[str, Sequence[ClassLabel]],
    window: Window,
    max_rows: int,
) -> WindowQuality:
    """Accuracy, log loss and binary ROC-AUC per version from labelled predictions."""
    served: dict[str, LabelledPredictions] = {}
    shadow: dict[str, LabelledPredictions] = {}
    rows = 0
    async with sessions() as session:
        async for version, outputs, label in repository.stream_labelled(
            session=session,
            model_name=model_name,
            start=window.start,
            end=window.end,
            limit=max_rows,
        ):
            rows += 1
            _labelled(served, version, outputs, classes).add(_probabilities(outputs), label)
        async for version, _, outputs, _, label in repository.stream_shadow_pairs(
            session=session,
            model_name=model_name,
            start=window.start,
            end=window.end,
            limit=max_rows,
            labelled_only=True,
        ):
            _labelled(shadow, version, outputs, classes).add(_probabilities(outputs), label)
    versions = {
        version: VersionQuality(
            served=served[version].report() if version in served else QualityReport(labelled=0),
            shadow=shadow[version].report() if version in shadow else None,
        )
        for version in sorted({*classes, *served, *shadow})
    }
    return WindowQuality(rows=rows, sampled=rows >= max_rows, versions=versions)


def _labelled(
    table: dict[str, LabelledPredictions],
    version: str,
    outputs: Mapping[str, Any],
    classes: Mapping[str, Sequence[ClassLabel]],
) -> LabelledPredictions:
    if version not in table:
        # A version no longer served: its classes are the keys its predictions were logged with.
        known = classes.get(version) or list(_probabilities(outputs))
        table[version] = LabelledPredictions(known)
    return table[version]


def _probabilities(outputs: Mapping[str, Any]) -> Mapping[str, object]:
    probabilities = outputs.get("probabilities")
    return probabilities if isinstance(probabilities, Mapping) else {}


class ShadowComparison(BaseModel):
    """A shadow version against the production version it shadowed, over the same rows."""

    model_config = ConfigDict(frozen=True)

    shadow_version: str
    production_version: str
    count: int
    agreement_rate: float | None
    mean_absolute_difference: float | None  # of class probabilities, over rows and classes
    max_absolute_difference: float | None


class WindowShadow(BaseModel):
    model_config = ConfigDict(frozen=True)

    rows: int
    sampled: bool
    comparisons: list[ShadowComparison]


async def shadow_over_window(
    sessions: Sessions, *, model_name: str, window: Window, max_rows: int
) -> WindowShadow:
    """Per (shadow, production) pair of versions: how often they agree on the class, and how
    far apart their probabilities are."""
    sums: dict[tuple[str, str], _Agreement] = {}
    rows = 0
    async with sessions() as session:
        async for (
            shadow_version,
            production_version,
            shadow,
            production,
            _,
        ) in repository.stream_shadow_pairs(
            session=session,
            model_name=model_name,
            start=window.start,
            end=window.end,
            limit=max_rows,
        ):
            rows += 1
            key = (shadow_version, production_version)
            sums.setdefault(key, _Agreement()).add(shadow, production)
    comparisons = [sums[key].comparison(*key) for key in sorted(sums)]
    return WindowShadow(rows=rows, sampled=rows >= max_rows, comparisons=comparisons)


class _Agreement:
    def __init__(self) -> None:
        self.count = self.agreed = self.compared = 0
        self.total = self.largest = 0.0

    def add(self, shadow: Mapping[str, Any], production: Mapping[str, Any]) -> None:
        self.count += 1
        self.agreed += int(shadow.get("label") == production.get("label"))
        ours, theirs = _probabilities(shadow), _probabilities(production)
        for key, value in theirs.items():
            other = ours.get(key)
            if isinstance(value, (int, float)) and isinstance(other, (int, float)):
                difference = abs(float(other) - float(value))
                self.total += difference
                self.largest = max(self.largest, difference)
                self.compared += 1

    def comparison(self, shadow_version: str, production_version: str) -> ShadowComparison:
        return ShadowComparison(
            shadow_version=shadow_version,
            production_version=production_version,
            count=self.count,
            agreement_rate=self.agreed / self.count if self.count else None,
            mean_absolute_difference=self.total / self.compared if self.compared else None,
            max_absolute_difference=self.largest if self.compared else None,
        )
