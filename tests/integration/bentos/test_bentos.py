"""Both bentos built from a checkout of this repository into the test store: what they pin,
ship and install, and where the CPU and GPU builds differ."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bentoml
import pytest
import yaml

from tests.utils.bentos import (
    DECOYS,
    EXCLUDED_DIRS,
    ROOT,
    VARIANT_ENVS,
    build_bento,
    checkout_repository,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def bentos(
    reference_models: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """variant -> the built bento, both built from one checkout with decoys."""
    context = checkout_repository(tmp_path_factory.mktemp("checkout"))
    tags = {variant: build_bento(context, variant, reference_models) for variant in ("cpu", "gpu")}
    yield {variant: bentoml.bentos.get(tag) for variant, tag in tags.items()}
    for tag in tags.values():
        bentoml.bentos.delete(tag)


def _info(bento: Any) -> dict[str, Any]:
    return dict(yaml.safe_load(Path(bento.path_of("bento.yaml")).read_text()))


def _shipped(bento: Any) -> set[str]:
    src = Path(bento.path_of("src"))
    return {path.relative_to(src).as_posix() for path in src.rglob("*") if path.is_file()}


def _service_models(bento: Any) -> dict[str, list[str]]:
    return {
        service["name"]: sorted(model["tag"] for model in service["models"])
        for service in _info(bento)["services"]
        if service.get("models")
    }


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_models_are_pinned_by_version_in_bento_yaml(
    bentos: dict[str, Any], reference_models: dict[str, str], variant: str
) -> None:
    pinned = _service_models(bentos[variant])

    # scikit-learn and XGBoost predict in the gateway's workers (SERVING_INPROCESS' default).
    assert pinned == {
        "gateway": sorted([reference_models["cancer-rf"], reference_models["fraud-xgb"]]),
        "torch_runner": [reference_models["digits-mlp"]],
    }
    assert all(
        ":" in tag and not tag.endswith(":latest") for tags in pinned.values() for tag in tags
    )


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_services_db_and_migrations_are_shipped(bentos: dict[str, Any], variant: str) -> None:
    shipped = _shipped(bentos[variant])
    expected = {
        path.relative_to(ROOT).as_posix()
        for package in ("services", "db", "migrations")
        for path in (ROOT / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }

    assert {"services/service.py", "services/runners/services.py"} <= shipped
    assert expected <= shipped


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_tests_data_stores_envs_and_secrets_are_not_shipped(
    bentos: dict[str, Any], variant: str
) -> None:
    shipped = _shipped(bentos[variant])

    assert not [path for path in shipped if path.startswith(EXCLUDED_DIRS)]
    assert not [path for path in shipped if "__pycache__" in path or path.endswith(".pyc")]
    assert not set(DECOYS) & shipped
    assert not [path for path in shipped if path.endswith((".env", ".pem", ".key", ".sqlite3"))]


def test_cpu_and_gpu_ship_the_same_sources_and_models(bentos: dict[str, Any]) -> None:
    assert _shipped(bentos["cpu"]) == _shipped(bentos["gpu"])
    assert _service_models(bentos["cpu"]) == _service_models(bentos["gpu"])


@pytest.mark.parametrize(("variant", "gpus"), [("cpu", None), ("gpu", 1)])
def test_only_the_gpu_torch_runner_asks_for_a_gpu(
    bentos: dict[str, Any], variant: str, gpus: int | None
) -> None:
    resources = {
        service["name"]: (service["config"].get("resources") or {}).get("gpu")
        for service in _info(bentos[variant])["services"]
    }

    assert resources.pop("torch_runner") == gpus
    assert set(resources.values()) == {None}


@pytest.fixture(scope="module")
def containerfiles(
    bentos: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """variant -> the Containerfile `bentoml containerize` would build it with."""
    directory = tmp_path_factory.mktemp("containerfiles")
    files = {}
    for variant, bento in bentos.items():
        path = directory / f"{variant}.dockerfile"
        bentoml.container.get_containerfile(str(bento.tag), output_path=str(path))
        files[variant] = path.read_text()
    return files


def test_containerfiles_differ_only_in_the_variant_envs(containerfiles: dict[str, str]) -> None:
    cpu, gpu = (set(containerfiles[v].splitlines()) for v in ("cpu", "gpu"))

    assert cpu ^ gpu
    assert all(any(name in line for name in VARIANT_ENVS) for line in cpu ^ gpu)
    assert "ARG SERVING_TORCH_DEVICE=cpu" in cpu
    assert "ARG SERVING_TORCH_DEVICE=cuda" in gpu
    assert "ARG SERVING_TORCH_GPU=1" in gpu
    assert "ARG NVIDIA_DRIVER_CAPABILITIES=compute,utility" in gpu
    assert not [line for line in cpu | gpu if line.startswith("FROM") and "cuda" in line]


def _requirements(bento: Any) -> dict[str, str]:
    """Requirement name -> line, of what the Containerfile installs."""
    text = Path(bento.path_of("env/python/requirements.txt")).read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return {re.split(r"[\s=@<>~!;]", line, maxsplit=1)[0]: line for line in lines if line[0] != "#"}


def test_containerfiles_install_cpu_or_cuda_torch_wheels(
    bentos: dict[str, Any], containerfiles: dict[str, str]
) -> None:
    installs = [line for line in containerfiles["cpu"].splitlines() if "pip install -r" in line]
    cpu, gpu = (_requirements(bentos[v]) for v in ("cpu", "gpu"))
    differ = {name for name in cpu.keys() | gpu.keys() if cpu.get(name) != gpu.get(name)}

    assert installs == [
        line for line in containerfiles["gpu"].splitlines() if "pip install -r" in line
    ]
    assert all("env/python/requirements.txt" in line for line in installs)
    assert differ == {"torch", "xgboost", "xgboost-cpu", "nvidia-nccl-cu12"}
    assert re.fullmatch(
        r"torch ?@ ?https://download\.pytorch\.org/whl/cpu/torch-[\d.]+%2Bcpu-.*\.whl", cpu["torch"]
    )
    assert re.fullmatch(r"torch==[\d.]+", gpu["torch"])
    assert "xgboost" not in cpu
    assert "xgboost-cpu" not in gpu
    assert not [name for name in cpu if name.startswith("nvidia-nccl")]
