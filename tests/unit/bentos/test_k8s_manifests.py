"""bentos/k8s: both overlays render offline and validate against the Kubernetes schemas."""

import importlib.util
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "bentos" / "k8s"
OVERLAYS = ("cpu", "gpu")
# The oldest and newest Kubernetes minor versions these manifests are checked against.
KUBERNETES_VERSIONS = ("1.30", "1.37")
SECRET_WORDS = ("SECRET", "PASSWORD", "TOKEN", "KEY", "DB_URL", "REDIS_URL")


def _renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("k8s_render", K8S / "render.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RENDER = _renderer()


def _rendered(overlay: str) -> dict[str, dict[str, Any]]:
    """kind -> resource (one of each kind here)."""
    resources = RENDER.render(K8S / "overlays" / overlay)
    kinds = [resource["kind"] for resource in resources]
    assert len(kinds) == len(set(kinds))
    return {resource["kind"]: resource for resource in resources}


def _gateway(overlay: str) -> dict[str, Any]:
    (container,) = _rendered(overlay)["Deployment"]["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", [])}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_resource_validates_against_the_kubernetes_schema(overlay: str, version: str) -> None:
    for resource in _rendered(overlay).values():
        kubernetes_validate.validate(resource, desired_version=version, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_base_resources_are_all_there(overlay: str) -> None:
    assert set(_rendered(overlay)) == {
        "ConfigMap",
        "Service",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Job",
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_resources_and_a_read_only_image(overlay: str) -> None:
    gateway = _gateway(overlay)
    volumes = _rendered(overlay)["Deployment"]["spec"]["template"]["spec"]["volumes"]

    assert gateway["livenessProbe"]["httpGet"]["path"] == "/health"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert {"cpu", "memory"} <= set(gateway["resources"]["requests"])
    assert {"cpu", "memory"} <= set(gateway["resources"]["limits"])
    assert gateway["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in gateway["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}} in volumes


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_from_a_config_map_and_secrets_only_by_reference(overlay: str) -> None:
    rendered = _rendered(overlay)
    config = rendered["ConfigMap"]
    job = rendered["Job"]["spec"]["template"]["spec"]["containers"][0]

    for container in (_gateway(overlay), job):
        assert {"configMapRef": {"name": config["metadata"]["name"]}} in container["envFrom"]
        assert {"secretRef": {"name": "model-packaging-secrets"}} in container["envFrom"]
        assert not [name for name in _env(container) if any(w in name for w in SECRET_WORDS)]
    assert "Secret" not in rendered
    assert not [name for name in config["data"] if any(w in name for w in SECRET_WORDS)]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_migration_job_runs_the_one_off_command(overlay: str) -> None:
    rendered = _rendered(overlay)
    (migrate,) = rendered["Job"]["spec"]["template"]["spec"]["containers"]

    assert migrate["command"] == ["python", "-m", "db.migrate", "upgrade"]
    assert migrate["image"] == _gateway(overlay)["image"]
    assert rendered["Job"]["spec"]["template"]["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_autoscaler_and_service_target_the_gateway(overlay: str) -> None:
    rendered = _rendered(overlay)
    pods = rendered["Deployment"]["spec"]["template"]["metadata"]["labels"]

    assert (
        rendered["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"]
        == (rendered["Deployment"]["metadata"]["name"])
    )
    assert rendered["Service"]["spec"]["selector"].items() <= pods.items()
    assert rendered["Service"]["spec"]["ports"][0]["targetPort"] == "http"


def test_the_gpu_overlay_requests_a_gpu_and_runs_torch_on_cuda() -> None:
    gateway = _gateway("gpu")

    assert gateway["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert gateway["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert _env(gateway)["SERVING_TORCH_DEVICE"] == "cuda"
    assert gateway["image"].split(":")[0].endswith("-gpu")


def test_the_cpu_overlay_asks_for_no_gpu() -> None:
    gateway = _gateway("cpu")

    assert "nvidia.com/gpu" not in yaml.safe_dump(_rendered("cpu"))
    assert _env(gateway)["SERVING_TORCH_DEVICE"] == "cpu"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_offline_renderer_matches_kubectl_kustomize(overlay: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: no reference rendering to compare with")
    output = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout

    assert {r["kind"]: r for r in yaml.safe_load_all(output)} == _rendered(overlay)


def test_the_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("namePrefix: canary-\nresources: []\n")

    with pytest.raises(RENDER.UnsupportedKustomization, match="namePrefix"):
        RENDER.render(tmp_path)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_drain_finishes_before_kubernetes_kills_the_pod(overlay: str) -> None:
    from services.gateway.drain import UVICORN_GRACE_S
    from services.settings import ServerSettings

    rendered = _rendered(overlay)
    pod = rendered["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    grace = float(
        rendered["ConfigMap"]["data"].get("SERVER_DRAIN_GRACE_S", ServerSettings().drain_grace_s)
    )
    # preStop, then the drain, then uvicorn's close; runners exit as soon as the gateway has.
    needed = float(pre_stop[1]) + grace + UVICORN_GRACE_S + 5
    assert needed <= pod["terminationGracePeriodSeconds"]
    assert ServerSettings().drain_grace_s < pod["terminationGracePeriodSeconds"]
