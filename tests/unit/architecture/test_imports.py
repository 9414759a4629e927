"""Dependencies point one way: every import inside services/ goes to a lower layer.

A component is a top-level package or module of services/ (services.auth, services.catalog...).
An arrow from a component to one in the same or a higher layer fails the test, with its file.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
LAYERS: list[set[str]] = [
    {"errors", "settings", "batching", "circuit", "http", "observability"},
    {"artifact", "redis_client"},
    {"catalog", "cache", "persistence", "monitoring"},
    {"auth", "runners", "deployments"},
    {"ratelimit"},
    {"pipeline"},
    {"batch"},
    {"gateway"},
    {"service", "cli"},
]
RANK = {component: rank for rank, layer in enumerate(LAYERS) for component in layer}


def _imports(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _component(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "services" and len(parts) > 1 else None


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_every_component_of_services_has_a_layer() -> None:
    components = {
        path.relative_to(ROOT / "services").parts[0].removesuffix(".py")
        for path in _sources("services")
    } - {"__init__"}

    assert components - set(RANK) == set()


def test_imports_inside_services_point_down() -> None:
    upward = []
    for path in _sources("services"):
        source = path.relative_to(ROOT / "services").parts[0].removesuffix(".py")
        for module in _imports(path):
            target = _component(module)
            if target is None or target == source or source == "__init__":
                continue
            if RANK[target] >= RANK[source]:
                upward.append(f"{path.relative_to(ROOT)}: {source} -> {target}")

    assert upward == []


def test_db_and_services_never_import_training_code_and_db_never_imports_services() -> None:
    offending = [
        f"{path.relative_to(ROOT)}: {module}"
        for package in ("services", "db")
        for path in _sources(package)
        for module in _imports(path)
        if module.split(".")[0] == "training_export"
        or (package == "db" and module.split(".")[0] == "services")
    ]

    assert offending == []
