"""Where a model came from: the code's git commit and the library versions that made it."""

import platform
import subprocess
from importlib import metadata

from training_export.settings import REPO_ROOT

COMMON_LIBRARIES = ("numpy", "pandas", "pyarrow", "scikit-learn", "bentoml")
FRAMEWORK_LIBRARIES = {"sklearn": "scikit-learn", "xgboost": "xgboost", "torch": "torch"}


def library_versions(framework: str) -> dict[str, str]:
    """Versions of Python, the common libraries and the model's framework."""
    names = [*COMMON_LIBRARIES, FRAMEWORK_LIBRARIES[framework]]
    versions = {"python": platform.python_version()}
    versions.update({name: metadata.version(name) for name in dict.fromkeys(names)})
    return versions


def git_commit() -> str | None:
    """The exporting code's commit, suffixed `-dirty` with uncommitted changes; None outside git."""
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def _git(*args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(REPO_ROOT), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return result.stdout.strip()
