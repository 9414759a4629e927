"""Train reference recipes quietly into the test store."""

from training_export.settings import ExportSettings
from training_export.train import train_recipe

SEED = 42


def train_reference(
    recipe: str, *, version: str, model_name: str | None = None, seed: int = SEED
) -> str:
    """Train `recipe` (with the reference seed unless told otherwise); return the stored tag."""
    return train_recipe(
        recipe, seed=seed, version=version, settings=ExportSettings(), model_name=model_name
    )
