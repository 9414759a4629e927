"""Batch execution: padding to fixed shapes, and measuring and verifying what keeps a row's
output independent of its batch, with small deterministic stand-ins for models."""

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from services.artifact.execution import (
    ExecutionPlan,
    PlannedPredictor,
    measure_execution,
    run_padded,
    verify_execution,
)
from services.artifact.metadata import ExecutionRecord

Matrix = npt.NDArray[np.float32]
Outputs = npt.NDArray[np.float64]
PROBE = np.random.default_rng(0).uniform(0, 16, (16, 4)).astype(np.float32)


def _rows(x: Matrix) -> Outputs:
    """A row's output from that row alone: [sum, first value]."""
    return np.stack([x.sum(axis=1), x[:, 0]], axis=1).astype(np.float64)


def invariant(x: Matrix) -> Outputs:
    return _rows(x)


def blocked_by_size(x: Matrix) -> Outputs:
    """Like a float kernel whose blocking changes at 64 rows: the last bits move."""
    return _rows(x) + (1e-12 if len(x) >= 64 else 0.0)


def position_dependent(x: Matrix) -> Outputs:
    return _rows(x) + 1e-12 * np.arange(len(x))[:, None]


def neighbour_dependent(x: Matrix) -> Outputs:
    return _rows(x) + 1e-12 * float(x.sum())


class Recorder:
    """Counts the batch sizes a predictor is called with."""

    def __init__(self, predict: Callable[[Matrix], Outputs]) -> None:
        self.sizes: list[int] = []
        self._predict = predict

    @property
    def n_features(self) -> int | None:
        return 4

    @property
    def n_outputs(self) -> int | None:
        return 2

    def predict_proba(self, x: Matrix) -> Outputs:
        self.sizes.append(len(x))
        return self._predict(x)


def test_padding_uses_the_smallest_shape_that_fits_and_chunks_by_the_largest() -> None:
    recorder = Recorder(invariant)
    x = np.random.default_rng(1).uniform(size=(300, 4)).astype(np.float32)

    outputs = run_padded(recorder.predict_proba, x, (8, 64, 128))

    assert recorder.sizes == [128, 128, 64]
    assert np.array_equal(outputs, _rows(x))


def test_padding_an_empty_batch_gives_no_rows() -> None:
    assert run_padded(invariant, np.zeros((0, 4), np.float32), (8,)).shape == (0, 2)


def test_a_batch_invariant_model_runs_batched() -> None:
    assert measure_execution(invariant, PROBE) == ExecutionRecord(mode="batched")


def test_kernels_that_change_with_the_batch_size_are_padded_to_agreeing_shapes() -> None:
    record = measure_execution(blocked_by_size, PROBE)

    assert record == ExecutionRecord(mode="padded", shapes=(64, 128, 256, 512))


@pytest.mark.parametrize("predict", [position_dependent, neighbour_dependent])
def test_no_execution_holds_when_a_row_depends_on_its_place_or_neighbours(
    predict: Callable[[Matrix], Outputs],
) -> None:
    assert measure_execution(predict, PROBE) is None


def test_a_record_that_mixes_disagreeing_shapes_does_not_verify() -> None:
    tampered = ExecutionRecord(mode="padded", shapes=(16, 64))

    assert verify_execution(blocked_by_size, PROBE, tampered) is None
    honest = ExecutionRecord(mode="padded", shapes=(64, 128))
    assert np.array_equal(verify_execution(blocked_by_size, PROBE, honest), _rows(PROBE) + 1e-12)


def test_a_batched_record_does_not_verify_for_a_size_dependent_model() -> None:
    assert verify_execution(blocked_by_size, PROBE, ExecutionRecord(mode="batched")) is None


def test_planned_predictor_pads_rowwise_only_when_told() -> None:
    padded = Recorder(invariant)
    rowwise = Recorder(invariant)
    x = PROBE[:5]

    PlannedPredictor(padded, ExecutionPlan("padded", (8, 16))).predict_proba(x)
    PlannedPredictor(rowwise, ExecutionPlan("rowwise")).predict_proba(x)

    assert padded.sizes == [8]
    assert rowwise.sizes == [1, 1, 1, 1, 1]


def test_a_padded_record_needs_ascending_shapes() -> None:
    with pytest.raises(ValueError, match="ascending"):
        ExecutionRecord(mode="padded", shapes=(64, 8))
    with pytest.raises(ValueError, match="no shapes"):
        ExecutionRecord(mode="batched", shapes=(8,))
