"""How `bench.load` starts the peers: the store's artifact file, the benchmark env, the commands.

The peers load the very file the project's runner loads: its path is read through the BentoML
store (`$BENTOML_HOME`) and its SHA-256 checked against the model's `artifact_files` record here,
before any server starts, and again by each peer before it unpickles the file.
"""

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.peers.digest import verify_file

REPO = Path(__file__).resolve().parents[2]
BENCH_VENV = Path(os.environ.get("BENCH_VENV") or REPO / ".venv-bench")
PEER_PACKAGES = ("litserve", "mlserver", "mlserver-sklearn", "scikit-learn", "joblib", "numpy")
# As in issue 10's outside measurement: batches of up to 64 requests or 10 ms, one worker.
MAX_BATCH_SIZE = 64
BATCH_TIMEOUT_S = 0.01


@dataclass(frozen=True)
class StoredArtifact:
    """One model's artifact file in the store, with the digest its export recorded."""

    name: str
    version: str
    path: Path
    sha256: str
    features: tuple[str, ...]

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.version}"


def stored_artifact(name: str) -> StoredArtifact:
    """The model file of `name` (latest) from the store, its SHA-256 verified against metadata."""
    import bentoml

    from services.artifact.loader import parse_metadata

    model = bentoml.models.get(name)
    tag = str(model.tag)
    metadata = parse_metadata(model.info.metadata, tag=tag)
    if metadata.framework != "sklearn":
        raise ValueError(
            f"{tag}: the peers serve scikit-learn joblib files, not {metadata.framework}"
        )
    path = Path(model.path) / metadata.model_file
    expected = metadata.artifact_files[metadata.model_file]
    verify_file(path, expected)
    return StoredArtifact(
        name=model.tag.name,
        version=str(model.tag.version),
        path=path,
        sha256=expected,
        features=tuple(metadata.feature_schema.names),
    )


def bench_python() -> Path:
    """The benchmark environment's interpreter; exits with the make target to run if missing."""
    python = BENCH_VENV / "bin" / "python"
    if not python.is_file():
        raise SystemExit(f"{BENCH_VENV} is missing: run `make bench-env` (LitServe, MLServer, wrk)")
    return python


def peer_versions() -> dict[str, str]:
    """Versions of the peer packages in the benchmark environment."""
    script = (
        "import importlib.metadata as m, json, sys;"
        "print(json.dumps({p: m.version(p) for p in sys.argv[1:]}))"
    )
    done = subprocess.run(
        [str(bench_python()), "-c", script, *PEER_PACKAGES],
        capture_output=True,
        text=True,
        check=True,
    )
    versions: dict[str, str] = json.loads(done.stdout)
    return versions


def peer_env() -> dict[str, str]:
    """The peers' environment: this one, with the repository importable (bench.peers)."""
    return {**os.environ, "PYTHONPATH": str(REPO)}


def litserve_command(artifact: StoredArtifact, port: int) -> list[str]:
    """LitServe, batching 64 requests / 10 ms, one inference worker."""
    return [
        str(bench_python()),
        "-m",
        "bench.peers.litserve_server",
        "--port",
        str(port),
        "--model-file",
        str(artifact.path),
        "--sha256",
        artifact.sha256,
        "--features",
        ",".join(artifact.features),
        "--max-batch-size",
        str(MAX_BATCH_SIZE),
        "--batch-timeout",
        str(BATCH_TIMEOUT_S),
        "--workers",
        "1",
    ]


def mlserver_command(
    artifact: StoredArtifact, port: int, folder: Path, extra_ports: tuple[int, int]
) -> list[str]:
    """MLServer with adaptive batching (64 / 10 ms) and inference in the HTTP process.

    Writes `settings.json` and `<name>/model-settings.json` into `folder`. `parallel_workers: 0`
    runs the model inside the server process (no inference pool, no hop); `debug: false` turns
    off MLServer's per-request access log. gRPC and metrics get the two `extra_ports`.
    """
    grpc_port, metrics_port = extra_ports
    settings = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "parallel_workers": 0,
        "debug": False,
        "load_models_at_startup": True,
    }
    model_settings = {
        "name": artifact.name,
        "implementation": "bench.peers.mlserver_runtime.VerifiedSKLearnModel",
        "max_batch_size": MAX_BATCH_SIZE,
        "max_batch_time": BATCH_TIMEOUT_S,
        "parameters": {
            "uri": str(artifact.path),
            "version": artifact.version,
            "extra": {"predict_fn": "predict_proba", "sha256": artifact.sha256},
        },
    }
    (folder / artifact.name).mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(json.dumps(settings, indent=2))
    (folder / artifact.name / "model-settings.json").write_text(
        json.dumps(model_settings, indent=2)
    )
    return [str(BENCH_VENV / "bin" / "mlserver"), "start", str(folder)]
