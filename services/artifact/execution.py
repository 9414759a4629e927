"""Batch execution that keeps a row's output independent of the batch it lands in.

Float32 matrix kernels choose their blocking by batch size, so a row computed in a batch of 16
can differ in its last bits from the same row computed alone. At one fixed batch shape, though,
each row goes through the same arithmetic wherever it sits and whoever its neighbours are
(ARCHITECTURE fact 17). So a model that is not invariant under arbitrary batch sizes is run
padded: every call is filled with zero rows up to one of a few fixed shapes. The export measures
what holds and records it (`ExecutionRecord`); the loader verifies it again on the golden rows
before serving, and refuses a record that does not hold.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from services.artifact.adapters import Predictor
from services.artifact.metadata import ExecutionRecord

logger = logging.getLogger("services.artifact")

# Shapes tried for padded execution: powers of two, so padding at most doubles the work, up to
# the runners' default largest batch.
CANDIDATE_SHAPES = (8, 16, 32, 64, 128, 256, 512)
# Batch sizes a `batched` model must agree at besides 1 (each row alone): odd and even, on both
# sides of the block sizes matrix kernels use.
BATCHED_SIZES = (2, 3, 7, 16, 17, 64, 256)
PROBE_SEED = 20_261_127

Matrix = npt.NDArray[np.float32]
Outputs = npt.NDArray[np.float64]
Predict = Callable[[Matrix], Outputs]


@dataclass(frozen=True)
class ExecutionPlan:
    """How a loaded model runs its batches: `batched`, `padded` to `shapes`, or (only for
    exports that predate execution records) `rowwise`."""

    mode: Literal["batched", "padded", "rowwise"]
    shapes: tuple[int, ...] = ()

    def describe(self) -> str:
        """A short human description for logs and reports."""
        if self.mode == "padded":
            return f"padded to {'/'.join(map(str, self.shapes))} rows"
        return "one row at a time" if self.mode == "rowwise" else "batched"


class PlannedPredictor:
    """A model run under an execution plan: what the runners call."""

    def __init__(self, inner: Predictor, plan: ExecutionPlan) -> None:
        self.inner = inner
        self.plan = plan

    @property
    def n_features(self) -> int | None:
        return self.inner.n_features

    @property
    def n_outputs(self) -> int | None:
        return self.inner.n_outputs

    def predict_proba(self, x: Matrix) -> Outputs:
        if self.plan.mode == "padded":
            return run_padded(self.inner.predict_proba, x, self.plan.shapes)
        if self.plan.mode == "rowwise" and x.shape[0] > 1:
            return np.concatenate([self.inner.predict_proba(x[i : i + 1]) for i in range(len(x))])
        return self.inner.predict_proba(x)


def run_padded(predict: Predict, x: Matrix, shapes: Sequence[int]) -> Outputs:
    """Run `x` in calls of exactly one of `shapes` rows: chunks of the largest, the rest padded
    with zero rows to the smallest shape that holds it."""
    largest = shapes[-1]
    parts = []
    for start in range(0, max(len(x), 1), largest):
        chunk = x[start : start + largest]
        size = next(shape for shape in shapes if shape >= len(chunk))
        batch = chunk
        if size > len(chunk):
            batch = np.zeros((size, x.shape[1]), dtype=np.float32)
            batch[: len(chunk)] = chunk
        parts.append(predict(batch)[: len(chunk)])
    return np.concatenate(parts)


def measure_execution(predict: Predict, probe: Matrix) -> ExecutionRecord | None:
    """The fastest execution under which every probe row gives identical bits wherever it lands.

    `batched` when sizes 1 to 256 all agree; else `padded` to the candidate shapes that agree
    with the largest shape that holds on its own. None when no shape holds.
    """
    rng = np.random.default_rng(PROBE_SEED)
    alone = outputs_at(predict, probe, 1, rng)
    if alone is not None and all(
        _same(outputs_at(predict, probe, size, rng), alone) for size in BATCHED_SIZES
    ):
        return ExecutionRecord(mode="batched")
    shapes = agreeing_shapes(predict, probe, CANDIDATE_SHAPES)
    return ExecutionRecord(mode="padded", shapes=shapes) if shapes else None


def agreeing_shapes(predict: Predict, probe: Matrix, candidates: Sequence[int]) -> tuple[int, ...]:
    """The candidates that agree, row for row, with the largest candidate that holds on its own
    (a row identical at every position with any neighbours); empty when none holds."""
    rng = np.random.default_rng(PROBE_SEED)
    held: dict[int, Outputs] = {}
    for size in sorted(candidates):
        outputs = outputs_at(predict, probe, size, rng)
        if outputs is not None:
            held[size] = outputs
    if not held:
        return ()
    anchor = held[max(held)]
    return tuple(size for size, outputs in held.items() if _same(outputs, anchor))


def verify_execution(predict: Predict, probe: Matrix, record: ExecutionRecord) -> Outputs | None:
    """The probe rows' outputs if `record` holds for them (each row identical in every batch
    the record allows), else None."""
    rng = np.random.default_rng(PROBE_SEED)
    sizes = (1, *BATCHED_SIZES) if record.mode == "batched" else record.shapes
    first = outputs_at(predict, probe, sizes[0], rng)
    if first is None:
        return None
    for size in sizes[1:]:
        if not _same(outputs_at(predict, probe, size, rng), first):
            return None
    return first


def outputs_at(
    predict: Predict, probe: Matrix, size: int, rng: np.random.Generator
) -> Outputs | None:
    """Each probe row's output in batches of exactly `size` rows, or None when a row's bits
    varied between batches (or the model refused a batch of that size)."""
    seen: list[Outputs | None] = [None] * len(probe)
    for layout in _layouts(len(probe), size, rng):
        batch = np.where((layout >= 0)[:, None], probe[np.maximum(layout, 0)], 0).astype(np.float32)
        try:
            outputs = predict(batch)
        except Exception:  # each framework raises its own error for a shape it cannot take
            return None
        if outputs.shape[0] != size:
            return None
        for position, row in enumerate(layout.tolist()):
            if row < 0:
                continue
            known = seen[row]
            if known is None:
                seen[row] = outputs[position]
            elif not np.array_equal(known, outputs[position]):
                return None
    rows = [row for row in seen if row is not None]
    return np.stack(rows) if len(rows) == len(probe) else None


def _layouts(rows: int, size: int, rng: np.random.Generator) -> list[npt.NDArray[np.intp]]:
    """Which probe row sits at each position of a batch of `size` (-1: a zero row).

    Together they put every probe row at two or more positions: packed with the other probe
    rows in a random order, spread out between zero rows, and (one row) alone at the end of a
    batch of zero rows, as a single-row request is padded.
    """
    if size == 1:
        return [np.array([row]) for row in range(rows)]
    alone = np.full(size, -1)
    alone[-1] = 0
    if size < rows:
        order = rng.permutation(rows)
        windows = [order[start : start + size] for start in range(0, rows, size)]
        return [np.concatenate([w, np.full(size - len(w), -1)]) for w in windows] + [alone]
    spread = np.full(size, -1)
    spread[np.linspace(0, size - 1, rows).round().astype(np.intp)] = np.arange(rows)
    return [np.resize(rng.permutation(rows), size), spread, alone]


def _same(outputs: Outputs | None, reference: Outputs) -> bool:
    return outputs is not None and bool(np.array_equal(outputs, reference))
