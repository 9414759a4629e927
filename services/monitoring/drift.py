"""Population stability index (PSI) between a model's reference distribution and served inputs.

Buckets per feature, each side counted as shares of all its rows (so each side sums to 1):

* numbers: the reference's quantile bins, the outer ones open-ended ((-inf, e0], (e0, e1], ...,
  (e_last, +inf)), plus `missing`;
* categories and booleans: each reference value, plus `other` for values the reference never
  had, plus `missing`.

PSI = sum over buckets of (o - r) * ln(o / r), with o the observed and r the reference share. A
share of 0 on either side counts as PSI_EPSILON (1e-4, i.e. 0.01% of rows), so a bucket empty on
one side adds a large but finite term and one empty on both sides adds nothing. Every term is
>= 0, so PSI >= 0, and 0 exactly when the shares agree.

Status per feature: PSI < 0.1 ok, 0.1 <= PSI < 0.25 warn, PSI >= 0.25 alert (the customary
thresholds); the overall status is the worst. Small samples read high: for n served rows drawn
exactly like N reference rows, PSI is about (buckets - 1) * (1/n + 1/N), 0.009 for 1,000 rows and
10 bins but 0.09 for 100, so read a status together with `rows`.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import islice
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from services.artifact.reference import (
    CategoricalReference,
    NumericReference,
    ReferenceDistribution,
)

PSI_EPSILON = 1e-4
ROWS_PER_BATCH = 4096  # rows held at once by add_rows
PSI_WARN = 0.1
PSI_ALERT = 0.25
BOOL_KEYS = {False: "false", True: "true"}
NO_REFERENCE = (
    "this model version has no reference distribution (exported before drift support); "
    "re-export it to monitor drift"
)
NO_DATA = "no served inputs to compare with the reference distribution"

DriftStatus = Literal["ok", "warn", "alert"]
ReportStatus = Literal["ok", "warn", "alert", "no_reference", "no_data"]
_SEVERITY: dict[DriftStatus, int] = {"ok": 0, "warn": 1, "alert": 2}


class FeatureDrift(BaseModel):
    """PSI of one feature and what the served values held that the reference did not."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kind: Literal["numeric", "categorical"]
    psi: float
    status: DriftStatus
    missing: int
    unseen: int = 0  # category values the reference never had (the `other` bucket)
    invalid: int = 0  # values of the wrong type (e.g. text for a number), counted as missing


class DriftReport(BaseModel):
    """Drift of one model version over a set of served rows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: ReportStatus
    rows: int
    features: tuple[FeatureDrift, ...] = ()
    reference_source: Literal["training", "evaluation"] | None = None
    reference_rows: int | None = None
    message: str | None = None


def population_stability_index(reference: Sequence[float], observed: Sequence[float]) -> float:
    """PSI of two bucket share vectors (same buckets, same order), zeros smoothed to PSI_EPSILON."""
    expected = np.maximum(np.asarray(reference, dtype=np.float64), PSI_EPSILON)
    actual = np.maximum(np.asarray(observed, dtype=np.float64), PSI_EPSILON)
    if expected.shape != actual.shape:
        raise ValueError("reference and observed need the same buckets")
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def drift_status(psi: float) -> DriftStatus:
    """ok below PSI_WARN (0.1), warn below PSI_ALERT (0.25), alert from there on."""
    if psi >= PSI_ALERT:
        return "alert"
    return "warn" if psi >= PSI_WARN else "ok"


def drift_report(
    reference: ReferenceDistribution | None, rows: Iterable[Mapping[str, object]]
) -> DriftReport:
    """Drift of served rows (feature name -> value) against a reference; rows are not read when
    there is no reference."""
    if reference is None:
        return DriftReport(status="no_reference", rows=0, message=NO_REFERENCE)
    observed = ObservedInputs(reference)
    observed.add_rows(rows)
    return observed.report()


class ObservedInputs:
    """Served inputs counted into a reference's buckets, batch by batch, in constant memory."""

    def __init__(self, reference: ReferenceDistribution) -> None:
        self.reference = reference
        self.rows = 0
        self._features: dict[str, _NumericCounts | _CategoryCounts] = {
            name: _NumericCounts(spec)
            if isinstance(spec, NumericReference)
            else _CategoryCounts(spec)
            for name, spec in reference.features.items()
        }

    def add_rows(self, rows: Iterable[Mapping[str, object]]) -> None:
        """Count rows as logged (feature name -> value); an absent feature counts as missing."""
        iterator = iter(rows)
        while batch := list(islice(iterator, ROWS_PER_BATCH)):
            self.add_columns({name: [row.get(name) for row in batch] for name in self._features})

    def add_columns(
        self, columns: Mapping[str, Sequence[object] | npt.NDArray[np.generic]]
    ) -> None:
        """Count one batch given as columns of equal length; an absent feature counts as missing."""
        lengths = {len(values) for name, values in columns.items() if name in self._features}
        if len(lengths) > 1:
            raise ValueError(f"columns differ in length: {sorted(lengths)}")
        size = lengths.pop() if lengths else 0
        for name, counts in self._features.items():
            counts.add(columns[name] if name in columns else [None] * size)
        self.rows += size

    def report(self) -> DriftReport:
        """PSI and status per feature, the worst status overall."""
        source, reference_rows = self.reference.source, self.reference.rows
        if self.rows == 0:
            return DriftReport(
                status="no_data",
                rows=0,
                reference_source=source,
                reference_rows=reference_rows,
                message=NO_DATA,
            )
        features = tuple(counts.drift(name, self.rows) for name, counts in self._features.items())
        worst = max((feature.status for feature in features), key=_SEVERITY.__getitem__)
        return DriftReport(
            status=worst,
            rows=self.rows,
            features=features,
            reference_source=source,
            reference_rows=reference_rows,
        )


class _NumericCounts:
    """Counts per reference bin (right-closed, like the reference's quantile edges) and missing."""

    def __init__(self, reference: NumericReference) -> None:
        self._reference = reference
        self._edges = np.asarray(reference.edges, dtype=np.float64)
        self._bins = np.zeros(len(reference.edges) + 1, dtype=np.int64)
        self._missing = 0
        self._invalid = 0

    def add(self, values: Sequence[object] | npt.NDArray[np.generic]) -> None:
        if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
            numbers = values.astype(np.float64)
        else:
            numbers = np.array([self._number(value) for value in values], dtype=np.float64)
        present = numbers[~np.isnan(numbers)]
        self._missing += len(numbers) - len(present)
        # side="left": x goes to the first bin whose upper edge is >= x, so bins are (low, high]
        positions = np.searchsorted(self._edges, present, side="left")
        self._bins += np.bincount(positions, minlength=len(self._bins))

    def _number(self, value: object) -> float:
        if value is None:
            return math.nan
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self._invalid += 1
            return math.nan
        return float(value)

    def drift(self, name: str, rows: int) -> FeatureDrift:
        reference = [*self._reference.proportions, self._reference.missing_rate]
        observed = [*(self._bins / rows), self._missing / rows]
        psi = population_stability_index(reference, observed)
        return FeatureDrift(
            name=name,
            kind="numeric",
            psi=psi,
            status=drift_status(psi),
            missing=self._missing,
            invalid=self._invalid,
        )


class _CategoryCounts:
    """Counts per reference value, of values the reference never had, and of missing values."""

    def __init__(self, reference: CategoricalReference) -> None:
        self._reference = reference
        self._index = {value: i for i, value in enumerate(reference.shares)}
        self._values = np.zeros(len(self._index), dtype=np.int64)
        self._unseen = 0
        self._missing = 0

    def add(self, values: Sequence[object] | npt.NDArray[np.generic]) -> None:
        for value in values:
            if value is None or (isinstance(value, float) and math.isnan(value)):
                self._missing += 1
                continue
            key = BOOL_KEYS[bool(value)] if isinstance(value, (bool, np.bool_)) else str(value)
            position = self._index.get(key)
            if position is None:
                self._unseen += 1
            else:
                self._values[position] += 1

    def drift(self, name: str, rows: int) -> FeatureDrift:
        reference = [*self._reference.shares.values(), 0.0, self._reference.missing_rate]
        observed = [*(self._values / rows), self._unseen / rows, self._missing / rows]
        psi = population_stability_index(reference, observed)
        return FeatureDrift(
            name=name,
            kind="categorical",
            psi=psi,
            status=drift_status(psi),
            missing=self._missing,
            unseen=self._unseen,
        )
