"""Record each feature's reference distribution (the drift baseline), streamed over record batches.

Numbers get exact quantile edges (numpy's `inverted_cdf`: edge j is the smallest value v with
F(v) >= j/bins) with memory bounded by the schema, never by the data, by a radix selection:

* each float maps to a 64-bit key with the same order, so the r-th smallest value is the r-th
  smallest key;
* the first pass counts every feature's keys by their top 8 bits (and keeps the smallest and
  largest key under each digit), missing values, and the values of categories and booleans;
  that gives each quantile's rank and the 8-bit bucket it lies in;
* each further pass reads only the buckets that still hold a quantile: a bucket of at most
  `cap` values is collected and sorted, which settles its quantiles; a larger one is counted by
  its next 8 bits. A bucket whose smallest and largest keys are equal holds a single value and
  is settled at once (heavy ties, constant columns).

Passes: typically two; one when every quantile lands on a value alone in its first bucket (0/1
columns, constant columns); at most eight (64 bits, 8 per pass). Memory: 3 x 256 counters per
open bucket, and at most `collect_budget` collected values overall (each quantile of each
feature gets an equal share). Identical data gives an identical record whatever the batch size.
Written by hand because the streaming quantile libraries (t-digest, KLL) are approximate and
KLL is randomised.
"""

import struct
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from services.artifact.reference import (
    CategoricalReference,
    NumericReference,
    ReferenceDistribution,
)
from services.artifact.schema import FeatureSchema, FeatureSpec
from training_export.errors import ExportError
from training_export.tables import FrameSource

REFERENCE_BINS = 10
COLLECT_BUDGET = 1 << 22  # values collected at once over all features: 32 MiB of keys
DIGIT_BITS = 8
DIGITS = 1 << DIGIT_BITS
KEY_BITS = 64
SIGN_BIT = 1 << 63
KEY_MASK = (1 << 64) - 1
BOOL_VALUES = ("false", "true")

Keys = npt.NDArray[np.uint64]


def export_reference(
    *, schema: FeatureSchema, train_source: FrameSource | None, eval_source: FrameSource
) -> ReferenceDistribution:
    """The training data's reference distribution, or the evaluation data's when there is none."""
    if train_source is not None:
        return reference_distribution(train_source, schema.features, source="training")
    return reference_distribution(eval_source, schema.features, source="evaluation")


def reference_distribution(
    batches: FrameSource,
    features: Sequence[FeatureSpec],
    *,
    source: Literal["training", "evaluation"],
    bins: int = REFERENCE_BINS,
    collect_budget: int = COLLECT_BUDGET,
) -> ReferenceDistribution:
    """Quantile bins of every number and shares of every category or bool, over all batches."""
    searches = {s.name: _QuantileSearch(bins) for s in features if s.dtype in ("int", "float")}
    counters = {s.name: _ValueCounter(s) for s in features if s.dtype in ("bool", "category")}
    rows = 0
    for frame in batches():
        rows += len(frame)
        for name, search in searches.items():
            search.scan(_numbers(frame[name]))
        for name, counter in counters.items():
            counter.update(frame[name])
    if rows == 0:
        raise ExportError(f"the {source} data has no rows to record a reference distribution")
    cap = max(1, collect_budget // max(1, (bins - 1) * len(searches)))
    for search in searches.values():
        search.settle(cap)
    while open_searches := {name: s for name, s in searches.items() if s.is_open}:
        for frame in batches():
            for name, search in open_searches.items():
                search.scan(_numbers(frame[name]))
        for search in open_searches.values():
            search.settle(cap)
    references: dict[str, NumericReference | CategoricalReference] = {
        name: search.reference(rows) for name, search in searches.items()
    }
    references.update({name: counter.reference(rows) for name, counter in counters.items()})
    return ReferenceDistribution(
        source=source,
        rows=rows,
        bins=bins,
        features={spec.name: references[spec.name] for spec in features},
    )


def reference_lines(document: Mapping[str, Any] | None) -> list[str]:
    """`show`'s lines for a stored reference distribution (None: exported before drift support)."""
    if document is None:
        return ["reference distribution: none (exported before drift support)"]
    reference = ReferenceDistribution.model_validate(document)
    lines = [
        f"reference distribution ({reference.source} data, {reference.rows} rows, "
        f"{reference.bins} quantile bins; proportions of all rows):"
    ]
    for name, feature in reference.features.items():
        if isinstance(feature, NumericReference):
            edges = " ".join(f"{edge:.6g}" for edge in feature.edges)
            shares = " ".join(f"{share:.1%}" for share in feature.proportions)
            values = f"edges [{edges}]  bins [{shares}]"
        else:
            values = ", ".join(f"{value} {share:.1%}" for value, share in feature.shares.items())
        lines.append(f"  {name:28} {values}  missing {feature.missing_rate:.1%}")
    return lines


def _numbers(column: pd.Series) -> npt.NDArray[np.float64]:
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def _keys(values: npt.NDArray[np.float64]) -> Keys:
    """Order-preserving map of floats to unsigned integers (no NaN; -0.0 counts as 0.0)."""
    bits = (values + 0.0).view(np.uint64)
    negative = (bits >> np.uint64(63)).astype(bool)
    return np.where(negative, ~bits, bits | np.uint64(SIGN_BIT))


def _value(key: int) -> float:
    """The float whose key this is (the inverse of `_keys`)."""
    bits = key ^ SIGN_BIT if key & SIGN_BIT else ~key & KEY_MASK
    value: float = struct.unpack("<d", struct.pack("<Q", bits))[0]
    return value


@dataclass
class _Target:
    """One quantile being searched: its rank and the bucket of keys known to hold it."""

    rank: int
    below: int = 0
    prefix: int = 0
    depth: int = 0
    count: int = 0
    key: int | None = None
    count_le: int = 0


class _Histogram:
    """Counts of the next 8 bits of the keys under one prefix, with each digit's extreme keys."""

    def __init__(self, prefix: int, depth: int) -> None:
        self.prefix, self.depth = prefix, depth
        self.counts = np.zeros(DIGITS, dtype=np.int64)
        self.lows = np.full(DIGITS, KEY_MASK, dtype=np.uint64)
        self.highs = np.zeros(DIGITS, dtype=np.uint64)

    def update(self, keys: Keys) -> None:
        keys = _under(keys, self.prefix, self.depth)
        shift = np.uint64(KEY_BITS - self.depth - DIGIT_BITS)
        digits = ((keys >> shift) & np.uint64(DIGITS - 1)).astype(np.intp)
        self.counts += np.bincount(digits, minlength=DIGITS)
        np.minimum.at(self.lows, digits, keys)
        np.maximum.at(self.highs, digits, keys)

    def narrow(self, target: _Target) -> None:
        """Move the target into the digit that holds its rank; settle it if that is one value."""
        cumulative = np.cumsum(self.counts)
        digit = int(np.searchsorted(cumulative, target.rank - target.below, side="left"))
        target.below += int(cumulative[digit] - self.counts[digit])
        target.prefix = (target.prefix << DIGIT_BITS) | digit
        target.depth += DIGIT_BITS
        target.count = int(self.counts[digit])
        if self.lows[digit] == self.highs[digit]:
            target.key = int(self.lows[digit])
            target.count_le = target.below + target.count


class _Collection:
    """Every key under one prefix, for a bucket small enough to sort."""

    def __init__(self, prefix: int, depth: int) -> None:
        self.prefix, self.depth = prefix, depth
        self._parts: list[Keys] = []
        self._sorted: Keys | None = None

    def update(self, keys: Keys) -> None:
        self._parts.append(_under(keys, self.prefix, self.depth))

    def narrow(self, target: _Target) -> None:
        """Settle the target: its key and how many keys are at most it."""
        if self._sorted is None:
            self._sorted = np.sort(np.concatenate(self._parts))
        key = self._sorted[target.rank - target.below - 1]
        target.key = int(key)
        target.count_le = target.below + int(np.searchsorted(self._sorted, key, side="right"))


def _under(keys: Keys, prefix: int, depth: int) -> Keys:
    if depth == 0:
        return keys
    selected: Keys = keys[(keys >> np.uint64(KEY_BITS - depth)) == np.uint64(prefix)]
    return selected


@dataclass
class _QuantileSearch:
    """Exact quantile edges of one numeric feature over repeated passes (see the module doc)."""

    bins: int
    present: int = 0
    missing: int = 0
    targets: list[_Target] = field(default_factory=list)
    _work: dict[tuple[int, int], _Histogram | _Collection] = field(default_factory=dict)
    _first_pass: bool = True

    def __post_init__(self) -> None:
        self._work[(0, 0)] = _Histogram(0, 0)

    @property
    def is_open(self) -> bool:
        return bool(self._work)

    def scan(self, values: npt.NDArray[np.float64]) -> None:
        """One batch of this pass; the first pass also counts present and missing values."""
        present = ~np.isnan(values)
        if self._first_pass:
            self.present += int(present.sum())
            self.missing += len(values) - int(present.sum())
        keys = _keys(values[present])
        for bucket in self._work.values():
            bucket.update(keys)

    def settle(self, cap: int) -> None:
        """After a pass: narrow or settle every open quantile, then plan the next pass."""
        if self._first_pass:
            self._first_pass = False
            # rank ceil(j * n / bins): the smallest value with F(v) >= j / bins
            self.targets = [
                _Target(rank=-(-j * self.present // self.bins), count=self.present)
                for j in range(1, self.bins)
                if self.present
            ]
        for target in self.targets:
            if target.key is None:
                self._work[(target.prefix, target.depth)].narrow(target)
        self._work = {}
        for target in self.targets:
            if target.key is None and (target.prefix, target.depth) not in self._work:
                kind = _Collection if target.count <= cap else _Histogram
                self._work[(target.prefix, target.depth)] = kind(target.prefix, target.depth)

    def reference(self, rows: int) -> NumericReference:
        """Edges are the distinct quantile values; each bin's share comes from exact counts."""
        settled = sorted({(t.key, t.count_le) for t in self.targets if t.key is not None})
        cumulative = [count_le for _, count_le in settled] + [self.present]
        counts = np.diff([0, *cumulative])
        return NumericReference(
            edges=tuple(_value(key) for key, _ in settled),
            proportions=tuple(int(count) / rows for count in counts),
            missing_rate=self.missing / rows,
        )


class _ValueCounter:
    """Counts of each value of a category or bool feature, and of missing values."""

    def __init__(self, spec: FeatureSpec) -> None:
        self._bool = spec.dtype == "bool"
        self._declared = BOOL_VALUES if self._bool else tuple(spec.categories or ())
        self._counts: Counter[str] = Counter()
        self._missing = 0

    def update(self, column: pd.Series) -> None:
        missing = column.isna()
        self._missing += int(missing.sum())
        present = column[~missing]
        if self._bool:
            flags = present.to_numpy(dtype=np.float64) != 0
            values = np.where(flags, BOOL_VALUES[1], BOOL_VALUES[0]).astype(object)
        else:
            values = present.map(str).to_numpy(dtype=object)
        uniques, counts = np.unique(values, return_counts=True)
        self._counts.update(dict(zip(map(str, uniques), map(int, counts), strict=True)))

    def reference(self, rows: int) -> CategoricalReference:
        """Declared values first, in schema order; any others (never in validated data) after."""
        others = sorted(set(self._counts) - set(self._declared))
        return CategoricalReference(
            shares={value: self._counts[value] / rows for value in (*self._declared, *others)},
            missing_rate=self._missing / rows,
        )
