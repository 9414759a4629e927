"""PyTorch artifact formats and batch execution for digits-mlp, on this machine's CPU.

Prints numbers; asserts nothing.

1. formats: TorchScript (.pt, the old format), a torch.export program (.pt2, what exports write
   now) and ONNX run by onnxruntime (only when onnxruntime, onnx and onnxscript are importable;
   they are not project dependencies: `pip install onnxruntime onnx onnxscript` into a separate
   environment that has this project's requirements to include them). For each: load time,
   latency per call at batch 1/16/64/256, whether the golden rows reproduce the eager PyTorch
   module's probabilities bit for bit, whether loading unpickled anything, and the batch
   execution the export would record for it.
2. execution: rows/s of the served torch.export model one row at a time (what digits-mlp ran as
   before) against its recorded padded execution and against a raw batched call.

Times are this thread's CPU time (one intra-op thread: the model runs on the calling thread), so
other work on the machine disturbs them far less than wall-clock time; load times are wall-clock.

    .venv/bin/python -m bench.torch_artifacts [--seconds 1.0]
"""

import argparse
import importlib.util
import logging
import pickle
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from services.artifact.adapters.torch_adapter import TorchAdapter, make_deterministic
from services.artifact.execution import ExecutionPlan, PlannedPredictor, measure_execution
from training_export.recipes.digits_mlp import DigitsRecipe
from training_export.settings import ExportSettings
from training_export.train import _split

Matrix = npt.NDArray[np.float32]
BATCHES = (1, 16, 64, 256)


def _trained() -> tuple[torch.nn.Module, Matrix, Matrix]:
    """The digits-mlp recipe's model (seed 42), its holdout matrix and 16 golden-like rows."""
    recipe = DigitsRecipe()
    settings = ExportSettings()
    frame = recipe.load_data(seed=42, settings=settings).frame
    train, holdout = _split(frame, recipe.target, 42)
    features = [c for c in frame.columns if c != recipe.target]
    x = train[features].to_numpy(np.float32)
    model = recipe.fit(x, train[recipe.target].to_numpy(np.int64), seed=42, settings=settings)
    rows = holdout[features].to_numpy(np.float32)
    return model, rows, rows[:16]


@contextmanager
def _unpickling_counter() -> Iterator[list[str]]:
    """Counts calls of every function torch.export.load can unpickle with."""
    calls: list[str] = []
    originals: dict[tuple[Any, str], Callable[..., Any]] = {
        (torch, "load"): torch.load,
        (pickle, "loads"): pickle.loads,
        (pickle, "load"): pickle.load,
        (torch._C, "_pickle_load_obj"): torch._C._pickle_load_obj,
    }

    def spy(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return original(*args, **kwargs)

        return counted

    for (owner, name), original in originals.items():
        setattr(owner, name, spy(name, original))
    try:
        yield calls
    finally:
        for (owner, name), original in originals.items():
            setattr(owner, name, original)


class OnnxPredictor:
    """An onnxruntime session, one thread, softmax in float64 like the torch adapter."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def predict_proba(self, x: Matrix) -> npt.NDArray[np.float64]:
        logits = self._session.run(None, {self._input: np.ascontiguousarray(x)})[0]
        shifted = logits.astype(np.float64)
        return torch.softmax(torch.from_numpy(shifted), dim=1).numpy()  # type: ignore[no-any-return]


def _write_formats(model: torch.nn.Module, rows: Matrix, directory: Path) -> dict[str, Path]:
    adapter = TorchAdapter()
    paths = {"torch.export (.pt2)": directory / adapter.save(model, directory, example=rows[:8])}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(model), str(directory / "model.pt"))  # type: ignore[no-untyped-call]
    paths["TorchScript (.pt)"] = directory / "model.pt"
    needed = ("onnxruntime", "onnx", "onnxscript")
    if all(importlib.util.find_spec(name) for name in needed):
        batch = torch.export.Dim("batch", min=1)
        program = torch.onnx.export(
            model,
            (torch.from_numpy(rows[:8]),),
            dynamo=True,
            dynamic_shapes=({0: batch},),
            verbose=False,
        )
        assert program is not None
        program.save(str(directory / "model.onnx"))
        paths["ONNX (onnxruntime)"] = directory / "model.onnx"
    else:
        print("(ONNX skipped: onnxruntime, onnx and onnxscript are not importable here)")
    return paths


def _loader(label: str, path: Path) -> Callable[[], Any]:
    if label.startswith("ONNX"):
        return lambda: OnnxPredictor(path)
    return lambda: TorchAdapter().load(path)


def _median_seconds(
    call: Callable[[], Any], repeat: int, clock: Callable[[], float] = time.thread_time
) -> float:
    times = []
    for _ in range(repeat):
        started = clock()
        call()
        times.append(clock() - started)
    return statistics.median(times)


def compare_formats(model: torch.nn.Module, rows: Matrix, golden: Matrix) -> None:
    with torch.inference_mode():
        eager = torch.softmax(model(torch.from_numpy(golden)).double(), dim=1).numpy()
    print("\n1. formats (load: wall ms, median of 7; latency: CPU us per call, median)")
    header = "format               load ms " + " ".join(f"{f'b{b}':>7}" for b in BATCHES)
    print(f"{header}  golden vs eager      unpickled  execution it would record")
    with tempfile.TemporaryDirectory() as scratch:
        for label, path in _write_formats(model, rows, Path(scratch)).items():
            load = _loader(label, path)
            with _unpickling_counter() as calls:
                predictor = load()
            load_ms = _median_seconds(load, 7, time.perf_counter) * 1e3
            latencies = []
            for batch in BATCHES:
                x = rows[:batch].copy()
                predictor.predict_proba(x)
                repeat = 2000 if batch <= 16 else 500
                call = partial(predictor.predict_proba, x)
                latencies.append(_median_seconds(call, repeat))
            outputs = predictor.predict_proba(golden)
            worst = float(np.max(np.abs(outputs - eager)))
            exact = "bit-identical" if np.array_equal(outputs, eager) else f"max |d| {worst:.2g}"
            record = measure_execution(predictor.predict_proba, golden)
            execution = "none holds" if record is None else f"{record.mode} {list(record.shapes)}"
            print(
                f"{label:20} {load_ms:7.2f} "
                + " ".join(f"{seconds * 1e6:7.1f}" for seconds in latencies)
                + f"  {exact:20} {len(calls):>9}  {execution}"
            )


def rows_per_second(predict: Callable[[Matrix], Any], x: Matrix, seconds: float) -> float:
    """Rows per CPU second of back-to-back calls for `seconds` of wall time."""
    predict(x)
    count, started, cpu = 0, time.perf_counter(), time.thread_time()
    while time.perf_counter() - started < seconds:
        predict(x)
        count += len(x)
    return count / (time.thread_time() - cpu)


def compare_execution(model: torch.nn.Module, rows: Matrix, golden: Matrix, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        adapter = TorchAdapter()
        raw = adapter.load(Path(scratch) / adapter.save(model, Path(scratch), example=rows[:8]))
    record = measure_execution(raw.predict_proba, golden)
    if record is None or record.mode != "padded":
        raise SystemExit(f"digits-mlp records {record} here; this comparison needs padded")
    plans = {
        "one row at a time": ExecutionPlan(mode="rowwise"),
        f"padded {list(record.shapes)}": ExecutionPlan(mode="padded", shapes=record.shapes),
        "raw batched (not invariant)": ExecutionPlan(mode="batched"),
    }
    print(f"\n2. execution, torch.export program, rows per CPU second ({seconds:g} s per cell)")
    print(f"{'execution':34} " + " ".join(f"{f'batch {b}':>11}" for b in BATCHES))
    for label, plan in plans.items():
        predictor = PlannedPredictor(raw, plan)
        rates = [
            rows_per_second(predictor.predict_proba, rows[:batch].copy(), seconds)
            for batch in BATCHES
        ]
        print(f"{label:34} " + " ".join(f"{rate:>11,.0f}" for rate in rates))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per throughput cell (1.0)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    # Loading TorchScript logs a deprecation notice per load; one line here says it instead.
    logging.getLogger("services.artifact").setLevel(logging.ERROR)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    make_deterministic(1)
    print(f"torch {torch.__version__}, cpu {torch.backends.cpu.get_cpu_capability()}")
    model, rows, golden = _trained()
    compare_formats(model, rows, golden)
    compare_execution(model, rows, golden, args.seconds)


if __name__ == "__main__":
    main()
