"""Read the model store: what is there, and one model's contract."""

from dataclasses import dataclass
from typing import Any

from training_export.errors import ExportError


@dataclass(frozen=True)
class StoredModel:
    """One model as `list` and `show` present it."""

    tag: str
    framework: str
    stage: str
    created: str
    size: str
    metrics: dict[str, float]
    metadata: dict[str, Any]
    labels: dict[str, str]


def list_models(name: str | None = None) -> list[StoredModel]:
    """Every model in the store (or every version of `name`), newest first."""
    import bentoml

    models = sorted(bentoml.models.list(name), key=lambda m: m.info.creation_time, reverse=True)
    return [_describe(model) for model in models]


def get_model(tag: str) -> StoredModel:
    """One model by `name` (latest) or `name:version`; ExportError when absent."""
    import bentoml
    from bentoml.exceptions import BentoMLException, NotFound

    try:
        return _describe(bentoml.models.get(tag))
    except NotFound:
        raise ExportError(f"no model {tag} in the store") from None
    except (BentoMLException, ValueError) as exc:
        raise ExportError(f"invalid model tag {tag}: {exc}") from None


def model_names() -> set[str]:
    """Names that have at least one version in the store."""
    return {model.tag.split(":")[0] for model in list_models()}


def _describe(model: Any) -> StoredModel:
    metadata = dict(model.info.metadata)
    labels = dict(model.info.labels)
    return StoredModel(
        tag=str(model.tag),
        framework=labels.get("framework", "?"),
        stage=labels.get("stage", "?"),
        created=model.info.creation_time.strftime("%Y-%m-%d %H:%M:%S"),
        size=_size(model),
        metrics=dict(metadata.get("metrics", {})),
        metadata=metadata,
        labels=labels,
    )


def _size(model: Any) -> str:
    from bentoml._internal.utils.filesystem import calc_dir_size

    kib = calc_dir_size(model.path) / 1024
    return f"{kib:.0f} KiB" if kib < 1024 else f"{kib / 1024:.1f} MiB"
