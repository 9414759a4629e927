"""Settings for training and export, read from `EXPORT_*` environment variables."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class ExportSettings(BaseSettings):
    """Where generated data goes and how training and evaluation run."""

    model_config = SettingsConfigDict(env_prefix="EXPORT_", extra="ignore")

    data_dir: Path = Field(
        default=REPO_ROOT / ".data", description="Where recipes write the data they generate."
    )
    threads: int = Field(
        default=1, ge=1, le=64, description="Training threads; fixed for reproducibility."
    )
    golden_count: int = Field(default=16, ge=16, le=256, description="Golden examples per model.")
    batch_rows: int = Field(
        default=65_536, ge=1, description="Rows per record batch when reading data files."
    )


def default_bentoml_home() -> Path:
    """The repository-local model store used unless BENTOML_HOME says otherwise."""
    return REPO_ROOT / ".bentoml"
