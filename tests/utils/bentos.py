"""Build the project's bentos from a checkout of this repository, as a release engineer would."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Files a checkout may hold that no bento may ship: tests, benchmarks, training code and data,
# local stores and environments, caches, secrets, local databases.
DECOYS = (
    ".data/transactions.parquet",
    ".bentoml/models/decoy/latest",
    ".venv/bin/python-decoy",
    "venv/lib/site.py",
    "services/__pycache__/service.cpython-311.pyc",
    "services/orphan.pyc",
    ".env",
    ".env.production",
    "services/local.env",
    "secrets/jwt.txt",
    "services/tls.key",
    "db/server.pem",
    "db/gateway.sqlite3",
    "gateway.db",
    ".pytest_cache/v/cache/lastfailed",
)
EXCLUDED_DIRS = ("tests/", "bench/", "training_export/", ".data/", ".bentoml/", ".venv/", "venv/")
VARIANT_ENVS = (
    "SERVING_TORCH_DEVICE",
    "SERVING_TORCH_GPU",
    "CUBLAS_WORKSPACE_CONFIG",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
)


def checkout_repository(target: Path) -> Path:
    """The repository's tracked and unignored files, as a fresh clone with local changes."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for relative in filter(None, listed.split("\0")):
        source = ROOT / relative
        if source.is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)
    for relative in DECOYS:
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        (target / relative).write_text("decoy: must not be in a bento\n")
    return target


def build_bento(context: Path, variant: str, models: dict[str, str]) -> str:
    env = {**os.environ, "SERVING_MODELS": ",".join(models.values())}
    result = subprocess.run(
        [sys.executable, str(context / "bentos" / "build.py"), variant],
        cwd=context,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0 and "Failed to install uv" in result.stderr:
        pytest.skip(f"bentoml build cannot run here: it needs uv ({result.stderr[-300:]})")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]
