"""LitServe peer: the project's scikit-learn joblib file behind LitServe's request batching.

Runs in the benchmark environment only (`make bench-env`), started by `bench.load`:

    .venv-bench/bin/python -m bench.peers.litserve_server --port 8100 \
        --model-file .bentoml/models/cancer-rf/<version>/model.joblib --sha256 <hex> \
        --features mean_radius,mean_texture,...

`POST /predict {"inputs": [{feature: value, ...}, ...]}` -> `{"probabilities": [[...], ...]}`.
The request carries the same rows as the project's `POST /api/v1/predictions`, objects keyed by
feature name; the file's SHA-256 is checked against the store's record before it is unpickled.
LitServe batches whole requests (up to `--max-batch-size` requests or `--batch-timeout` seconds),
so `batch` joins their rows into one matrix and `predict` splits the result again.
"""

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import litserve as ls  # type: ignore[import-not-found]
import numpy as np
import numpy.typing as npt

from bench.peers.digest import verify_file

Matrix = npt.NDArray[np.float32]


class ForestAPI(ls.LitAPI):  # type: ignore[misc]
    """One fitted classifier; each request is a list of feature objects."""

    def __init__(
        self,
        *,
        model_file: Path,
        sha256: str,
        features: Sequence[str],
        max_batch_size: int,
        batch_timeout: float,
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout)
        self.model_file = model_file
        self.sha256 = sha256
        self.features = tuple(features)
        self.model: Any = None

    def setup(self, device: str) -> None:
        verify_file(self.model_file, self.sha256)  # before joblib unpickles anything
        self.model = joblib.load(self.model_file)

    def decode_request(self, request: dict[str, Any]) -> Matrix:
        rows = request["inputs"]
        return np.array([[row[name] for name in self.features] for row in rows], dtype=np.float32)

    def batch(self, inputs: list[Matrix]) -> list[Matrix]:
        return inputs  # joined in predict, which knows each request's row count

    def predict(self, x: list[Matrix] | Matrix) -> list[npt.NDArray[np.float64]]:
        parts = x if isinstance(x, list) else [x]
        probabilities = self.model.predict_proba(np.concatenate(parts))
        bounds = np.cumsum([len(part) for part in parts])[:-1]
        return list(np.split(probabilities, bounds))

    def unbatch(self, output: list[npt.NDArray[np.float64]]) -> list[npt.NDArray[np.float64]]:
        return output

    def encode_response(self, output: npt.NDArray[np.float64]) -> dict[str, Any]:
        return {"probabilities": output.tolist()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.litserve_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model-file", type=Path, required=True)
    parser.add_argument("--sha256", required=True, help="the model store's recorded digest")
    parser.add_argument("--features", required=True, help="comma-separated, in model order")
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--batch-timeout", type=float, default=0.01)
    parser.add_argument("--workers", type=int, default=1, help="inference workers per device")
    args = parser.parse_args(argv)
    api = ForestAPI(
        model_file=args.model_file,
        sha256=args.sha256,
        features=args.features.split(","),
        max_batch_size=args.max_batch_size,
        batch_timeout=args.batch_timeout,
    )
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=args.workers)
    # No per-request access log: the peer runs as an operator would deploy it.
    server.run(host="127.0.0.1", port=args.port, generate_client_file=False, access_log=False)


if __name__ == "__main__":
    main()
