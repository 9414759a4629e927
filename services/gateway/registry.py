"""The served models' public description and schemas, read from store metadata (no weights)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.artifact.loader import parse_metadata
from services.artifact.metadata import ArtifactMetadata
from services.catalog import ModelRef, served_models
from services.errors import ModelNotFound


@dataclass(frozen=True)
class ServedModel:
    """One served model as the gateway knows it."""

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


class ModelRegistry:
    """Looks up served models by `name` or `name:version`."""

    def __init__(self, models: list[ServedModel]) -> None:
        self._by_name = {model.ref.name: model for model in models}

    @classmethod
    def from_store(cls, refs: tuple[ModelRef, ...] | None = None) -> "ModelRegistry":
        """The served models (SERVING_MODELS unless `refs` says otherwise), from store metadata."""
        import bentoml

        models = []
        for ref in served_models() if refs is None else refs:
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
