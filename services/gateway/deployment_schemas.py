"""Request and response schemas of the lifecycle routes: versions, deployments and their
history, and the drift, quality and shadow reports."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.deployments.state import DeploymentState, Stage
from services.monitoring.drift import DriftReport
from services.monitoring.live import ShadowComparison
from services.monitoring.quality import QualityReport


class DeploymentPublic(DeploymentState):
    """A model's deployment, with what a change should know about."""

    warnings: list[str] = Field(
        default_factory=list, description="What to watch after this change (PUT and rollback)."
    )


class RollbackRequest(BaseModel):
    """Which revision to restore (default: the one before the current)."""

    model_config = ConfigDict(extra="forbid")

    to_revision: int | None = Field(default=None, ge=1)


class WindowPublic(BaseModel):
    start: str
    end: str


class DriftVersion(BaseModel):
    version: str
    stage: Stage
    drift: DriftReport


class DriftPublic(BaseModel):
    """PSI per feature of each version's reference against the served inputs of the window."""

    model_config = ConfigDict(protected_namespaces=())

    model: str
    window: WindowPublic
    rows: int = Field(description="Served rows read (the callers' predictions, not shadows).")
    sampled: bool = Field(description="The row limit was reached: the newest rows were read.")
    thresholds: dict[str, float]
    versions: list[DriftVersion]


class QualityVersion(BaseModel):
    version: str
    stage: Stage | None = Field(description="null for a version no longer loaded.")
    holdout: dict[str, float] = Field(description="Metrics recorded at export, on holdout data.")
    live: QualityReport = Field(description="On the labelled predictions it served.")
    shadow: QualityReport | None = Field(
        default=None,
        description="As a shadow, on the labels of the production predictions it shadowed.",
    )


class QualityPublic(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model: str
    window: WindowPublic
    rows: int
    sampled: bool
    versions: list[QualityVersion]


class ShadowPublic(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model: str
    window: WindowPublic
    rows: int
    sampled: bool
    comparisons: list[ShadowComparison]


def deployment_public(state: DeploymentState, warnings: list[str] | None = None) -> dict[str, Any]:
    """A deployment state as the response body."""
    return DeploymentPublic(**state.model_dump(), warnings=warnings or []).model_dump(mode="json")
