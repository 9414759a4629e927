"""Render a kustomization offline: `python bentos/k8s/render.py bentos/k8s/overlays/gpu`.

`kubectl kustomize` (or `kustomize build`) is what deploys; this renderer exists so the tests can
render the overlays without either binary. It supports exactly what bentos/k8s uses and refuses
anything else: `resources` (files and kustomization directories), `patches` (strategic-merge
patch files, matched by apiVersion, kind and name) and `images` (newName, newTag, digest). The
strategic merge follows Kubernetes' patch merge keys for the fields these manifests patch; the
tests compare the result with `kubectl kustomize` where kubectl is installed.
"""

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]
SUPPORTED = {"apiVersion", "kind", "resources", "patches", "images"}
# Kubernetes' patchMergeKey for the lists these manifests patch; other lists are replaced.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "tolerations": "key",
}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}


class UnsupportedKustomization(Exception):
    """The kustomization uses a feature this renderer does not implement."""


def _load_documents(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _key(resource: Resource) -> tuple[str, str, str]:
    return (resource["apiVersion"], resource["kind"], resource["metadata"]["name"])


def merge(base: Any, patch: Any, field: str = "") -> Any:
    """A strategic merge of `patch` into `base` (neither is modified)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for name, value in patch.items():
            if value is None:
                merged.pop(name, None)
            elif name in merged:
                merged[name] = merge(merged[name], value, name)
            else:
                merged[name] = copy.deepcopy(value)
        return merged
    key = MERGE_KEYS.get(field)
    if key and isinstance(base, list) and isinstance(patch, list):
        merged_list = [copy.deepcopy(item) for item in base]
        for item in patch:
            index = next((i for i, old in enumerate(merged_list) if old[key] == item[key]), None)
            if index is None:
                merged_list.append(copy.deepcopy(item))
            else:
                merged_list[index] = merge(merged_list[index], item)
        return merged_list
    return copy.deepcopy(patch)


def _set_images(resource: Resource, images: list[dict[str, str]]) -> None:
    if resource["kind"] not in WORKLOAD_KINDS:
        return
    spec = resource["spec"]["template"]["spec"]
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        name = container["image"].split("@", 1)[0].rsplit(":", 1)[0]
        for image in images:
            if image["name"] != name:
                continue
            new = image.get("newName", name)
            if "digest" in image:
                container["image"] = f"{new}@{image['digest']}"
            else:
                container["image"] = f"{new}:{image.get('newTag', 'latest')}"


def render(directory: Path) -> list[Resource]:
    """The resources a kustomization directory renders to, in `resources` order."""
    config = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(config) - SUPPORTED
    if unsupported:
        raise UnsupportedKustomization(f"{directory}: {sorted(unsupported)}")
    resources: list[Resource] = []
    for entry in config.get("resources", []):
        path = (directory / entry).resolve()
        resources.extend(render(path) if path.is_dir() else _load_documents(path))
    by_key = {_key(resource): i for i, resource in enumerate(resources)}
    for patch_entry in config.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise UnsupportedKustomization(f"{directory}: patch {patch_entry}")
        for patch in _load_documents(directory / patch_entry["path"]):
            index = by_key.get(_key(patch))
            if index is None:
                raise UnsupportedKustomization(f"{directory}: no resource for patch {_key(patch)}")
            resources[index] = merge(resources[index], patch)
    for resource in resources:
        _set_images(resource, config.get("images", []))
    return resources


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    print(yaml.safe_dump_all(render(Path(argv[0])), sort_keys=False), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
