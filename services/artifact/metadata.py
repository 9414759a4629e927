"""The metadata every exported model carries, as one typed document."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.artifact.reference import ReferenceDistribution
from services.artifact.schema import FeatureSchema, JsonScalar, OutputSchema


class DataProvenance(BaseModel):
    """Which data a model learned from or was measured on, by content digest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: str | None = Field(default=None, description="Digest of the content, not the file.")
    digest_method: str
    rows: int | None = None
    source: str | None = None


class GoldenExamples(BaseModel):
    """Inputs with the exact outputs the model gave for them at export."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    inputs: list[dict[str, JsonScalar]] = Field(min_length=16)
    outputs: list[list[float]] = Field(min_length=16)


class ArtifactMetadata(BaseModel):
    """Everything needed to trust, serve and reproduce one exported model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    contract_version: Literal[1] = 1
    framework: Literal["sklearn", "xgboost", "torch"]
    artifact_files: dict[str, str] = Field(description="File name -> SHA-256 of its bytes.")
    model_file: str
    batch_invariant: bool = Field(
        description="Whether a batched call gave each row the same output as a call alone."
    )
    feature_schema: FeatureSchema
    output_schema: OutputSchema
    metrics: dict[str, float]
    evaluation_data: DataProvenance
    training_data: DataProvenance
    seed: int | None = None
    library_versions: dict[str, str]
    git_commit: str | None = None
    recipe: str | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    golden_examples: GoldenExamples
    kernels: str | None = Field(
        default=None,
        description="The numeric kernels the golden outputs were computed with (framework build, "
        "device, CPU instruction set); absent for formats whose outputs do not depend on them.",
    )
    reference_distribution: ReferenceDistribution | None = Field(
        default=None,
        description="Per-feature distribution of the training data, the baseline for drift; "
        "absent in models exported before drift support.",
    )

    def to_store(self) -> dict[str, Any]:
        """JSON-native form for the BentoML model store, which refuses None: absent means None."""
        return self.model_dump(mode="json", exclude_none=True)
