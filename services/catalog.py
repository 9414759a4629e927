"""Which models this deployment serves: resolved against the model store once, then described
from their store metadata (schemas, metrics; never files or weights).

Several versions of one model may be served side by side (`SERVING_MODELS=cancer-rf:v1,
cancer-rf:v2`); a bare `name` there means the store's newest version of it. The runner services
use the refs (which tags to declare and load); the prediction pipeline and the model routes use
the catalog (look up `name:version`, list a model's versions). Which version answers an
unpinned request is the deployment's decision (services.deployments); without one it is the
newest served version (`ModelCatalog.newest`).
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
    """The configured models with their versions pinned (a bare name means the latest); a tag
    named twice (say `cancer-rf` and its latest `cancer-rf:v2`) is served once."""
    import bentoml
    from bentoml.exceptions import NotFound

    refs: list[ModelRef] = []
    for wanted in serving_settings().models:
        try:
            stored = bentoml.models.get(wanted)
        except NotFound:
            raise ModelNotLoaded(
                f"model {wanted} is not in the model store; export it first (make models)"
            ) from None
        framework = stored.info.labels.get("framework", "")
        ref = ModelRef(stored.tag.name, str(stored.tag.version), framework)
        if ref not in refs:
            refs.append(ref)
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
    """Looks up served models by `name:version`, and lists each name's versions."""

    def __init__(self, models: list[ServedModel]) -> None:
        self._by_tag = {model.ref.tag: model for model in models}
        self._by_name: dict[str, list[ServedModel]] = {}
        for model in models:
            self._by_name.setdefault(model.ref.name, []).append(model)
        for versions in self._by_name.values():
            versions.sort(key=lambda m: (m.created_at, m.ref.version), reverse=True)

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
        """Every served model version, by name, the newest version of each name first."""
        return [model for name in self.names() for model in self._by_name[name]]

    def names(self) -> list[str]:
        """The served model names, sorted."""
        return sorted(self._by_name)

    def versions(self, name: str) -> list[ServedModel]:
        """The served versions of `name`, newest first (empty for an unknown name)."""
        return list(self._by_name.get(name, ()))

    def newest(self, name: str) -> ServedModel:
        """The newest served version of `name` (by export time): the production version until
        a deployment says otherwise; ModelNotFound for a name that is not served."""
        versions = self._by_name.get(name)
        if not versions:
            raise self.not_found(name)
        return versions[0]

    def get(self, name: str, version: str) -> ServedModel | None:
        """The served `name:version`, or None."""
        return self._by_tag.get(f"{name}:{version}")

    def resolve(self, wanted: str) -> ServedModel:
        """The served model for `name:version`, or the newest version for `name`;
        ModelNotFound otherwise."""
        name, _, version = wanted.partition(":")
        if not version:
            return self.newest(name)
        model = self.get(name, version)
        if model is None:
            raise self.not_found(wanted)
        return model

    def not_found(self, wanted: str) -> ModelNotFound:
        """The 404 for a model or version this deployment does not serve."""
        return ModelNotFound(
            f"model {wanted!r} is not served", details={"served": sorted(self._by_tag)}
        )
