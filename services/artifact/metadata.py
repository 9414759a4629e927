"""The metadata every exported model carries, as one typed document."""

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


class ExecutionRecord(BaseModel):
    """How the model runs batches so that a row's output never depends on its batch.

    `batched`: any batch size, as it comes. `padded`: every call is padded with zero rows to one
    of `shapes` (the smallest that fits; larger batches are cut into chunks of the largest), and
    the export verified that a row gives identical bits at any position, with any neighbours,
    in every one of these shapes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["batched", "padded"]
    shapes: tuple[int, ...] = Field(
        default=(), description="Padded mode: the batch sizes calls are padded to, ascending."
    )

    @model_validator(mode="after")
    def _shapes_fit_the_mode(self) -> Self:
        if self.mode == "batched" and self.shapes:
            raise ValueError("batched execution takes no shapes")
        if self.mode == "padded" and (
            not self.shapes or min(self.shapes) < 1 or list(self.shapes) != sorted(set(self.shapes))
        ):
            raise ValueError("padded execution needs ascending, distinct, positive shapes")
        return self


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
    model_format: str | None = Field(
        default=None,
        description="The model file's format (e.g. torch.export, torchscript, xgboost-json, "
        "joblib); absent in exports made before it was recorded.",
    )
    execution: ExecutionRecord | None = Field(
        default=None,
        description="The batch execution the export verified and recorded the goldens under; "
        "absent in older exports, which `batch_invariant` alone describes.",
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
