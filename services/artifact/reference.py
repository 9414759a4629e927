"""The reference distribution an export records per feature, the baseline for drift (PSI).

Every proportion is a share of all reference rows, missing ones included, so for each feature
the bin proportions (or category shares) plus `missing_rate` sum to 1.
"""

import math
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

SUM_TOLERANCE = 1e-9
Share = Annotated[float, Field(ge=0.0, le=1.0)]


class NumericReference(BaseModel):
    """Quantile bins of a number: bin 0 is (-inf, edges[0]], bin i is (edges[i-1], edges[i]],
    the last bin (edges[-1], +inf)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["numeric"] = "numeric"
    edges: tuple[float, ...] = Field(
        description="Distinct quantile values of the reference data, increasing (at most bins-1)."
    )
    proportions: tuple[Share, ...] = Field(description="Share of all rows in each bin.")
    missing_rate: Share

    @model_validator(mode="after")
    def _check(self) -> Self:
        if len(self.proportions) != len(self.edges) + 1:
            raise ValueError("a numeric reference needs one more proportion than edges")
        if not all(math.isfinite(edge) for edge in self.edges):
            raise ValueError("bin edges must be finite")
        if any(low >= high for low, high in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("bin edges must be strictly increasing")
        _check_total(sum(self.proportions) + self.missing_rate)
        return self


class CategoricalReference(BaseModel):
    """Shares of each value of a category (or of `false`/`true` for a bool) feature."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["categorical"] = "categorical"
    shares: dict[str, Share] = Field(
        description="Value -> share of all rows; every declared value, in schema order."
    )
    missing_rate: Share

    @model_validator(mode="after")
    def _check(self) -> Self:
        _check_total(sum(self.shares.values()) + self.missing_rate)
        return self


FeatureReference = Annotated[NumericReference | CategoricalReference, Field(discriminator="kind")]


class ReferenceDistribution(BaseModel):
    """Per feature, how the reference data was distributed, and which data that was."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Literal["training", "evaluation"] = Field(
        description="The data it was computed from: training data, or evaluation data when the "
        "export had no training data."
    )
    rows: int = Field(ge=1)
    bins: int = Field(ge=2, description="Quantile bins asked for; ties can leave fewer.")
    quantiles: Literal["inverted_cdf"] = Field(
        default="inverted_cdf",
        description="Edge j is the smallest value v with F(v) >= j/bins (numpy's inverted_cdf).",
    )
    features: dict[str, FeatureReference] = Field(description="Feature name -> its reference.")


def _check_total(total: float) -> None:
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise ValueError(f"proportions and missing rate sum to {total}, not 1")
