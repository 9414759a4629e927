"""The CPU and GPU build files: one source, current pinned requirements, differing only in
what the hardware needs."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
BENTOFILES = {"cpu": ROOT / "bentofile.yaml", "gpu": ROOT / "bentos" / "bentofile.gpu.yaml"}


def _bentofile(variant: str) -> dict[str, Any]:
    return dict(yaml.safe_load(BENTOFILES[variant].read_text()))


def _envs(variant: str) -> dict[str, str]:
    return {env["name"]: str(env["value"]) for env in _bentofile(variant)["envs"]}


def test_requirements_files_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bentos" / "gen_requirements.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("field", ["service", "include", "exclude", "docker"])
def test_both_bentos_build_the_same_service_from_the_same_files(field: str) -> None:
    assert _bentofile("cpu")[field] == _bentofile("gpu")[field]


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_builds_do_not_lock_against_the_index(variant: str) -> None:
    python = _bentofile(variant)["python"]

    assert python["lock_packages"] is False
    assert python["requirements_txt"] == f"./bentos/requirements-{variant}.txt"


def test_variant_envs() -> None:
    cpu, gpu = _envs("cpu"), _envs("gpu")

    assert (cpu["SERVING_TORCH_DEVICE"], cpu["SERVING_TORCH_GPU"]) == ("cpu", "0")
    assert (gpu["SERVING_TORCH_DEVICE"], gpu["SERVING_TORCH_GPU"]) == ("cuda", "1")
    assert gpu["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert {k: v for k, v in gpu.items() if k in cpu and not k.startswith("SERVING_TORCH")} == {
        k: v for k, v in cpu.items() if not k.startswith("SERVING_TORCH")
    }


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_no_secret_is_baked_into_an_image(variant: str) -> None:
    envs = _envs(variant)

    assert not [name for name in envs if any(w in name for w in ("SECRET", "PASSWORD", "TOKEN"))]
    assert envs["DB_URL"].startswith("sqlite")  # the volume default; PostgreSQL's comes at run
    assert envs["SERVING_ENVIRONMENT"] == "production"  # refuses to start without the secrets


def test_gpu_requirements_differ_only_in_torch_and_xgboost() -> None:
    def requirements(variant: str) -> set[str]:
        text = (ROOT / "bentos" / f"requirements-{variant}.txt").read_text()
        return {line for line in text.splitlines() if line and not line.startswith("#")}

    cpu, gpu = requirements("cpu"), requirements("gpu")

    assert sorted(cpu - gpu)[0].startswith("torch @ https://download.pytorch.org/whl/cpu/")
    assert {line.split("==")[0] for line in gpu - cpu} == {"torch", "xgboost", "nvidia-nccl-cu12"}
    assert {line.split("==")[0] for line in cpu - gpu if "==" in line} == {"xgboost-cpu"}
