"""MLServer peer: MLServer's own scikit-learn runtime, refusing a file whose digest differs.

Runs in the benchmark environment only (`make bench-env`). `bench.load` writes the settings
(`settings.json`, `model-settings.json`) into its results folder and starts
`.venv-bench/bin/mlserver start <folder>`; the model settings name this class as the
implementation, the store's artifact file as `parameters.uri` and its recorded SHA-256 as
`parameters.extra.sha256`. Everything else is `mlserver_sklearn.SKLearnModel` unchanged.
"""

from pathlib import Path

from mlserver.utils import get_model_uri  # type: ignore[import-not-found]
from mlserver_sklearn import SKLearnModel  # type: ignore[import-not-found]

from bench.peers.digest import verify_file


class VerifiedSKLearnModel(SKLearnModel):  # type: ignore[misc]
    """`SKLearnModel` that checks the joblib file's SHA-256 before unpickling it."""

    async def load(self) -> bool:
        uri = Path(await get_model_uri(self._settings))
        extra = self._settings.parameters.extra or {}
        if "sha256" not in extra:
            raise ValueError(f"{self._settings.name}: parameters.extra.sha256 is required")
        verify_file(uri, str(extra["sha256"]))
        return bool(await super().load())
