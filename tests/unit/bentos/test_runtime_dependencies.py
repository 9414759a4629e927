"""The image's dependencies are what the served code imports: every third-party import in
services/, db/ and migrations/ (what the bento ships) is declared in `[project] dependencies`, and
every runtime dependency is imported there or named below with the reason it is needed."""

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ("services", "db", "migrations")
# Runtime dependencies that the shipped code needs without importing them by name.
NEEDED_WITHOUT_IMPORT = {
    "scikit-learn": "joblib unpickles the scikit-learn estimators",
    "python-multipart": "FastAPI's Form() parses the token route's form body with it",
    "asyncpg": "SQLAlchemy's postgresql+asyncpg driver",
    "aiosqlite": "SQLAlchemy's sqlite+aiosqlite driver",
    "httptools": "the HTTP parser of uvicorn's httptools protocol, which the gateway guards",
    "uvloop": "uvicorn's event loop in BentoML's workers (loop=auto picks it when installed)",
}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# The `batch` extra (Dask) is for `python -m services.batch score` and for jobs on a Dask
# cluster (JOBS_DASK_SCHEDULER, checked at startup): imported there, lazily, so the image does
# without it.
BATCH_EXTRA_USERS = {
    "services/batch/distributed.py",
    "services/batch/__main__.py",
    "services/batch/worker.py",
}


def _names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(line).name) for line in requirements}


def _imported_distributions() -> dict[str, set[str]]:
    """Distribution -> the shipped files that import one of its top-level modules."""
    by_module = packages_distributions()
    found: dict[str, set[str]] = {}
    for package in SHIPPED:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top in sys.stdlib_module_names or top in SHIPPED:
                        continue
                    assert top in by_module, f"{path}: {top} is not installed"
                    for distribution in by_module[top]:
                        name = canonicalize_name(distribution)
                        found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_import_of_the_shipped_code_is_a_declared_dependency() -> None:
    declared = _names(PYPROJECT["project"]["dependencies"]) | _batch_extra()

    undeclared = {
        name: sorted(files)
        for name, files in _imported_distributions().items()
        if name not in declared
    }

    assert not undeclared, f"imported but not in [project] dependencies: {undeclared}"


def test_every_runtime_dependency_is_used_by_the_shipped_code() -> None:
    declared = _names(PYPROJECT["project"]["dependencies"])

    unused = declared - set(_imported_distributions()) - set(NEEDED_WITHOUT_IMPORT)

    assert not unused, f"runtime dependencies nothing shipped imports: {sorted(unused)}"
    assert set(NEEDED_WITHOUT_IMPORT) <= declared


def _batch_extra() -> set[str]:
    return _names(PYPROJECT["project"]["optional-dependencies"]["batch"]) - _names(
        PYPROJECT["project"]["dependencies"]
    )


def test_the_batch_extra_is_imported_only_by_the_dask_engine_and_lazily() -> None:
    users = {
        name: files for name, files in _imported_distributions().items() if name in _batch_extra()
    }

    assert users, "the Dask command imports nothing from the batch extra"
    assert set().union(*users.values()) <= BATCH_EXTRA_USERS
    for path in BATCH_EXTRA_USERS:  # only inside functions: importing the module needs no Dask
        tree = ast.parse((ROOT / path).read_text())
        top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        modules = {
            (n.module or "") if isinstance(n, ast.ImportFrom) else n.names[0].name
            for n in top_level
        }
        assert not {m for m in modules if m.split(".")[0] in ("dask", "distributed")}, path


def test_training_only_packages_stay_out_of_the_image() -> None:
    training = _names(PYPROJECT["project"]["optional-dependencies"]["training"])
    runtime = _names(PYPROJECT["project"]["dependencies"])
    requirements = (ROOT / "bentos" / "requirements-cpu.txt").read_text().splitlines()
    pinned = {canonicalize_name(line.split("==")[0]) for line in requirements if "==" in line}

    assert "pandas" in training
    assert not training & runtime
    assert not training & set(_imported_distributions())
    assert "pandas" not in pinned  # nothing else in the runtime closure pulls it back in
    assert "pyarrow" in pinned
