"""What the deployment makes of each served version: its stage, traffic weight and shadow flag.

Stages are the deployment's view, not the store's `stage` label (that stays what the exporter
wrote): `production` and `canary` take unpinned traffic, `shadow` gets copies, `archived` was
production in an earlier revision, `candidate` is loaded and has never been production.
"""

import hashlib
import json
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from services.catalog import ModelCatalog, ServedModel
from services.deployments.state import DeploymentState, Stage
from services.deployments.validation import COMPARED_FIELDS


class VersionView(BaseModel):
    """One loaded version of a model as the deployment sees it."""

    model_config = ConfigDict(frozen=True)

    version: str
    tag: str
    framework: str
    stage: Stage
    store_stage: str = Field(description="The store's `stage` label, as the exporter wrote it.")
    created_at: datetime
    traffic_weight: float = Field(description="Share of unpinned requests it answers.")
    shadow: bool
    metrics: dict[str, float] = Field(description="Holdout metrics recorded at export.")
    schema_digest: str = Field(
        description="SHA-256 of what must agree between versions (feature names, order, types, "
        "categories, missing policy; classes): equal digests take the same requests."
    )
    has_reference: bool = Field(description="Whether drift can be measured against it.")


def stage_of(version: str, state: DeploymentState, past_production: set[str]) -> Stage:
    """The deployment's stage of `version`."""
    if version == state.production:
        return "production"
    if state.canary is not None and version == state.canary.version:
        return "canary"
    if version in state.shadow:
        return "shadow"
    return "archived" if version in past_production else "candidate"


def version_views(
    catalog: ModelCatalog, state: DeploymentState, past_production: set[str]
) -> list[VersionView]:
    """Every loaded version of the model, newest first."""
    weight = state.canary.weight if state.canary is not None else 0.0
    views = []
    for model in catalog.versions(state.model):
        version = model.ref.version
        stage = stage_of(version, state, past_production)
        share = {"production": 1.0 - weight, "canary": weight}.get(stage, 0.0)
        views.append(
            VersionView(
                version=version,
                tag=model.ref.tag,
                framework=model.ref.framework,
                stage=stage,
                store_stage=model.stage,
                created_at=model.created_at,
                traffic_weight=share,
                shadow=stage == "shadow",
                metrics=model.metadata.metrics,
                schema_digest=schema_digest(model),
                has_reference=model.metadata.reference_distribution is not None,
            )
        )
    return views


def schema_digest(model: ServedModel) -> str:
    """SHA-256 of the canonical JSON of what two versions must share (not training ranges)."""
    document = {
        "features": [
            {"name": spec.name, **{field: getattr(spec, field) for field in COMPARED_FIELDS}}
            for spec in model.metadata.feature_schema.features
        ],
        "classes": list(model.metadata.output_schema.classes),
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
