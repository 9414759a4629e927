"""Which models this deployment serves: resolved against the model store once, then described
from their store metadata (schemas, metrics; never files or weights).

The runner services use the refs (which tags to declare and load); the prediction pipeline and
the model routes use the catalog (resolve `name` or `name:version` to a served model).
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from services.artifact.loader import parse_metadata
from services.artifact.metadata import ArtifactMetadata
from services.errors import ModelNotFound, ModelNotLoaded
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
def served_refs() -> tuple[ModelRef, ...]:
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


def refs_for(framework: str) -> list[ModelRef]:
    """The served models one framework's runner loads."""
    return [ref for ref in served_refs() if ref.framework == framework]


@dataclass(frozen=True)
class ServedModel:
    """One served model as the gateway knows it: its ref and its store metadata."""

    ref: ModelRef
    metadata: ArtifactMetadata
    stage: str
    created_at: datetime

    def public(self) -> dict[str, Any]:
        """What clients may see: schemas, metrics, framework; never files, digests or weights."""
        return {
            "name": self.ref.name,
            "version": self.ref.version,
            "tag": self.ref.tag,
            "framework": self.ref.framework,
            "stage": self.stage,
            "created_at": self.created_at.isoformat(),
            "feature_schema": self.metadata.feature_schema.model_dump(mode="json"),
            "output_schema": self.metadata.output_schema.model_dump(mode="json"),
            "metrics": self.metadata.metrics,
        }


class ModelCatalog:
    """Looks up served models by `name` or `name:version`."""

    def __init__(self, models: list[ServedModel]) -> None:
        self._by_name = {model.ref.name: model for model in models}

    @classmethod
    def from_store(cls, refs: tuple[ModelRef, ...] | None = None) -> "ModelCatalog":
        """The served models (SERVING_MODELS unless `refs` says otherwise), from store metadata."""
        import bentoml

        models = []
        for ref in served_refs() if refs is None else refs:
            stored = bentoml.models.get(ref.tag)
            models.append(
                ServedModel(
                    ref=ref,
                    metadata=parse_metadata(stored.info.metadata, tag=ref.tag),
                    stage=stored.info.labels.get("stage", "candidate"),
                    created_at=stored.info.creation_time,
                )
            )
        return cls(models)

    def all(self) -> list[ServedModel]:
        """Every served model, by name."""
        return sorted(self._by_name.values(), key=lambda model: model.ref.name)

    def resolve(self, wanted: str) -> ServedModel:
        """The served model for `name` or `name:version`; ModelNotFound otherwise."""
        name, _, version = wanted.partition(":")
        model = self._by_name.get(name)
        if model is None or (version and version != model.ref.version):
            raise ModelNotFound(
                f"model {wanted!r} is not served",
                details={"served": sorted(m.ref.tag for m in self._by_name.values())},
            )
        return model
