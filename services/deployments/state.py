"""What a deployment says: a production version, optionally a canary with a traffic weight and
shadow versions; and the revisions it went through."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
MAX_SHADOWS = 3  # each shadow repeats every production request's inference

Version = Annotated[str, Field(pattern=VERSION_PATTERN, min_length=1, max_length=200)]
Sticky = Literal["request", "principal"]
Role = Literal["production", "canary", "pinned", "shadow"]
Stage = Literal["production", "canary", "shadow", "archived", "candidate"]
Action = Literal["initial", "set", "rollback"]


class CanarySpec(BaseModel):
    """A version that gets a share of the unpinned requests."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Version
    weight: float = Field(ge=0.0, le=1.0, description="Share of unpinned requests, 0 to 1.")
    sticky: Sticky = Field(
        default="request",
        description="What decides the side: the request id (`request`), or the caller "
        "(`principal`), so that one caller always sees one version.",
    )


class DeploymentSpec(BaseModel):
    """Which served versions of a model take traffic, and how."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    production: Version = Field(description="The version that answers unpinned requests.")
    canary: CanarySpec | None = None
    shadow: tuple[Version, ...] = Field(
        default=(),
        max_length=MAX_SHADOWS,
        description="Versions that get a copy of each production request after the response; "
        "their outputs are logged, never returned.",
    )

    # Field validators (not one model validator), so an error names the field it is about.
    @field_validator("canary")
    @classmethod
    def _canary_is_another_version(
        cls, canary: CanarySpec | None, info: ValidationInfo
    ) -> CanarySpec | None:
        if canary is not None and canary.version == info.data.get("production"):
            raise ValueError("the canary must be another version than production")
        return canary

    @field_validator("shadow")
    @classmethod
    def _shadows_are_other_versions(
        cls, shadow: tuple[str, ...], info: ValidationInfo
    ) -> tuple[str, ...]:
        if len(set(shadow)) != len(shadow):
            raise ValueError("a version is listed twice")
        canary = info.data.get("canary")
        taken = {info.data.get("production"), canary.version if canary else None}
        if taken & set(shadow):
            raise ValueError("a shadow version must not also be production or the canary")
        return shadow

    @property
    def versions(self) -> list[str]:
        """Every version the deployment names, production first."""
        canary = [self.canary.version] if self.canary else []
        return [self.production, *canary, *self.shadow]


class DeploymentState(BaseModel):
    """A model's deployment now: its spec and revision, or the default before any change."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    model: str
    revision: int | None = Field(
        description="Revision number; null while no deployment was set (the default applies)."
    )
    production: str
    canary: CanarySpec | None = None
    shadow: tuple[str, ...] = ()
    source: Literal["deployment", "default"] = Field(
        description="`default`: no deployment set yet, the newest served version is production."
    )
    updated_at: datetime | None = None
    updated_by: str | None = None

    @property
    def spec(self) -> DeploymentSpec:
        return DeploymentSpec(production=self.production, canary=self.canary, shadow=self.shadow)


class RevisionRecord(BaseModel):
    """One entry of a model's deployment history."""

    model_config = ConfigDict(frozen=True)

    revision: int
    action: Action
    restored_revision: int | None = Field(
        default=None, description="For a rollback: the revision whose state it restored."
    )
    production: str
    canary: CanarySpec | None = None
    shadow: tuple[str, ...] = ()
    actor: str | None
    created_at: datetime
