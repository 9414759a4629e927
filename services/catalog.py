"""Which models this deployment serves, resolved against the model store once at import."""

import logging
from dataclasses import dataclass
from functools import lru_cache

from services.errors import ModelNotLoaded
from services.settings import serving_settings

logger = logging.getLogger("services.catalog")


@dataclass(frozen=True)
class ModelRef:
    """A served model: its exact tag and the framework whose runner serves it."""

    name: str
    version: str
    framework: str

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.version}"


@lru_cache(maxsize=1)
def served_models() -> tuple[ModelRef, ...]:
    """The configured models with their versions pinned (a bare name means the latest)."""
    import bentoml
    from bentoml.exceptions import NotFound

    refs = []
    for wanted in serving_settings().models:
        try:
            stored = bentoml.models.get(wanted)
        except NotFound:
            raise ModelNotLoaded(
                f"model {wanted} is not in the model store; export it first (make models)"
            ) from None
        framework = stored.info.labels.get("framework", "")
        refs.append(ModelRef(stored.tag.name, str(stored.tag.version), framework))
    names = [ref.name for ref in refs]
    if len(set(names)) != len(names):
        raise ModelNotLoaded("SERVING_MODELS names one model twice; serve one version per name")
    return tuple(refs)


def models_for(framework: str) -> list[ModelRef]:
    """The served models one framework's runner loads."""
    return [ref for ref in served_models() if ref.framework == framework]
