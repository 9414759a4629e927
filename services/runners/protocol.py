"""What the gateway sends a runner and what it gets back: encoded rows in, probabilities out."""

from pydantic import BaseModel, ConfigDict, Field


class PredictItem(BaseModel):
    """One gateway call's rows for one model, already validated and encoded."""

    model_config = ConfigDict(frozen=True)

    model: str = Field(description="name:version of a model this runner serves")
    rows: list[list[float]]


class PredictOutput(BaseModel):
    """Class probabilities per row, in the model's class order."""

    probabilities: list[list[float]]


class RunnerStatus(BaseModel):
    """What a runner has loaded and verified."""

    framework: str
    models: list[str]
