"""The PyTorch runner on CUDA: golden outputs within tolerance, batched throughput against CPU.

Run through bentos/gpu_check.sh, which first makes sure there is an NVIDIA GPU. Steps:

1. train the digits-mlp reference model into a temporary BentoML home (CPU, as always): a
   torch.export program whose metadata records the batch execution verified on the CPU
   (`padded` to fixed shapes);
2. load it on CUDA through the runners' verifying loader, which re-verifies that execution on
   CUDA (a golden row identical at every position, with any neighbours, in every shape; recorded
   shapes that disagree on CUDA are dropped, and none holding fails the check), then compare its
   golden outputs with the CPU-recorded ones: the largest absolute difference must be at most
   SERVING_GOLDEN_TOLERANCE (default 1e-5, a probability); prints the execution it chose;
3. `bentoml serve` the PyTorch runner with SERVING_TORCH_DEVICE=cuda and SERVING_TORCH_GPU=1
   (its startup check applies the same tolerance), predict the golden rows through HTTP and
   compare again;
4. the same runner on the CPU, then both under the same concurrent batched load: rows/s;
5. the bare model, batch sizes 1 to 1024, on both devices, without HTTP: rows/s run as it comes
   (`raw`) and run under the execution the loader chose (`served`, padded).

`--on-cpu` runs every step with the CPU standing in for CUDA, to test this script itself on a
machine without a GPU; its numbers say nothing about GPUs.
"""

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODEL = "digits-mlp"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _train(env: dict[str, str]) -> str:
    subprocess.run(
        [sys.executable, "-m", "training_export", "train", MODEL, "--seed", "42"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    import bentoml

    return str(bentoml.models.get(MODEL).tag)


def _golden(tag: str) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], Any]:
    """Encoded golden inputs, their recorded outputs and the model's metadata."""
    import bentoml

    from services.artifact.loader import parse_metadata

    model = bentoml.models.get(tag)
    metadata = parse_metadata(model.info.metadata, tag=tag)
    x = metadata.feature_schema.encode_rows(metadata.golden_examples.inputs)
    return x, np.asarray(metadata.golden_examples.outputs, dtype=np.float64), metadata


def _loaded(tag: str, device: str, tolerance: float) -> Any:
    """The model as a runner on `device` loads it: digests, execution and goldens verified."""
    import bentoml

    from services.artifact.adapters import torch_adapter
    from services.artifact.loader import load_verified

    torch_adapter.make_deterministic(1)
    torch_adapter.ADAPTER.device = device
    model = bentoml.models.get(tag)
    return load_verified(
        Path(model.path),
        model.info.metadata,
        name=model.tag.name,
        version=str(model.tag.version),
        golden_tolerance=tolerance,
    )


def check_direct(tag: str, device: str, tolerance: float) -> bool:
    """Load on `device` through the verifying loader; print the execution and golden difference."""
    from services.errors import AppError

    x, expected, metadata = _golden(tag)
    recorded = metadata.execution
    print(f"     recorded execution: {recorded.mode} {list(recorded.shapes)} ({metadata.kernels})")
    try:
        model = _loaded(tag, device, tolerance)
    except AppError as exc:
        print(f"FAIL loading on {device}: {exc.message} {exc.details}")
        return False
    worst = float(np.max(np.abs(model.predictor.predict_proba(x) - expected)))
    narrowed = model.execution.shapes != tuple(recorded.shapes)
    print(
        f"ok   execution on {device}: {model.execution.describe()}"
        + (" (narrowed from the record: shapes disagree here)" if narrowed else "")
    )
    print(f"ok   golden outputs on {device} (loaded directly): max |diff| {worst:.3g}")
    return True


@contextlib.contextmanager
def serve(env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """The PyTorch runner alone under `bentoml serve`, until the block ends."""
    url = f"http://127.0.0.1:{port}"
    command = [
        str(Path(sys.executable).parent / "bentoml"),
        "serve",
        "services.runners.services:TorchRunner",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the runner exited; see {log}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"the runner was not ready in 300 s; see {log}")
            time.sleep(1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def check_served(url: str, tag: str, tolerance: float, label: str) -> float:
    x, expected, _ = _golden(tag)
    items = [{"model": tag, "rows": x.tolist()}]
    response = httpx.post(f"{url}/predict", json={"items": items}, timeout=60)
    response.raise_for_status()
    actual = np.asarray(response.json()[0]["probabilities"], dtype=np.float64)
    worst = float(np.max(np.abs(actual - expected)))
    verdict = "ok" if worst <= tolerance else "FAIL"
    print(f"{verdict:4} golden outputs from the runner served on {label}: max |diff| {worst:.3g}")
    return worst


async def _load(url: str, tag: str, rows: int, clients: int, seconds: float) -> float:
    """Rows per second that `clients` concurrent callers of `rows` rows each get served."""
    rng = np.random.default_rng(0)
    batch = [{"model": tag, "rows": rng.uniform(0, 16, (rows, 64)).round(0).tolist()}]
    done = 0
    stop = time.perf_counter() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            response = await http.post("/predict", json={"items": batch})
            response.raise_for_status()
            done += rows

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        await http.post("/predict", json={"items": batch})  # warm-up
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        return done / (time.perf_counter() - started)


def bare_throughput(predictor: Any, batch: int, seconds: float = 2.0) -> float:
    """Rows per second of `predictor` on one `batch`-row input, called back to back."""
    x = np.random.default_rng(0).uniform(0, 16, (batch, 64)).astype(np.float32)
    predictor.predict_proba(x)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        predictor.predict_proba(x)
        count += batch
    return count / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=64, help="rows per request (default 64)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent callers (16)")
    parser.add_argument("--seconds", type=float, default=15.0, help="per load run (15)")
    parser.add_argument("--on-cpu", action="store_true", help="test this script without a GPU")
    args = parser.parse_args(argv)
    tolerance = float(os.environ.get("SERVING_GOLDEN_TOLERANCE", "1e-5"))
    device = "cpu" if args.on_cpu else "cuda"

    import torch

    if not args.on_cpu and not torch.cuda.is_available():
        print(
            f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA device: install "
            "the CUDA build (the torch line of bentos/requirements-gpu.txt) and check the driver",
            file=sys.stderr,
        )
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    os.environ.update(
        BENTOML_HOME=str(scratch / "bentoml"),
        EXPORT_DATA_DIR=str(scratch / "data"),
        BENTOML_DO_NOT_TRACK="True",
        CUBLAS_WORKSPACE_CONFIG=":4096:8",
        SERVING_GOLDEN_TOLERANCE=str(tolerance),
    )
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, tolerance {tolerance:g}")
    if args.on_cpu:
        print("--on-cpu: the CPU stands in for CUDA; these numbers say nothing about GPUs")
    else:
        print(f"device: {torch.cuda.get_device_name(0)}")
    tag = _train(dict(os.environ))
    print(f"model: {tag} (scratch: {scratch})")
    failures = int(not check_direct(tag, device, tolerance))
    base = {**os.environ, "SERVING_MODELS": tag}
    runs = {
        "cuda": {**base, "SERVING_TORCH_DEVICE": device, "SERVING_TORCH_GPU": "1"},
        "cpu": {**base, "SERVING_TORCH_DEVICE": "cpu", "SERVING_TORCH_GPU": "0"},
    }
    throughput = {}
    for label, env in runs.items():
        if args.on_cpu:
            env["BENTOML_DISABLE_GPU_ALLOCATION"] = "1"
        with serve(env, _free_port(), scratch / f"serve-{label}.log") as url:
            failures += int(check_served(url, tag, tolerance, label) > tolerance)
            throughput[label] = asyncio.run(_load(url, tag, args.rows, args.clients, args.seconds))
    print(f"\nserved, {args.clients} clients x {args.rows} rows per request, {args.seconds:g} s:")
    for label, rate in throughput.items():
        print(f"  {label:5} {rate:12,.0f} rows/s")
    print(f"  cuda/cpu {throughput['cuda'] / throughput['cpu']:.2f}x")
    if failures:
        print(f"\nFAILED: {failures} check(s); logs in {scratch}")
        return 1
    loaded = {
        label: _loaded(tag, label_device, tolerance)
        for label, label_device in (("cpu", "cpu"), ("cuda", device))
    }
    print("\nbare model (no HTTP), rows/s: raw = as it comes, served = under its execution plan")
    columns = [f"{label} {kind}" for label in loaded for kind in ("raw", "served")]
    print(f"  {'batch':>6} " + " ".join(f"{column:>14}" for column in columns))
    for batch in (1, 64, 256, 1024):
        rates = []
        for model in loaded.values():
            rates += [
                bare_throughput(model.predictor.inner, batch),
                bare_throughput(model.predictor, batch),
            ]
        print(f"  {batch:>6} " + " ".join(f"{rate:>14,.0f}" for rate in rates))
    shutil.rmtree(scratch, ignore_errors=True)
    print("\nPASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
