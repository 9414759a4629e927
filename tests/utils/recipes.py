"""Train reference recipes quietly into the test store."""

from training_export.settings import ExportSettings
from training_export.train import train_recipe

SEED = 42


def train_reference(recipe: str, *, version: str, model_name: str | None = None) -> str:
    """Train `recipe` with the reference seed; return the stored tag."""
    return train_recipe(
        recipe, seed=SEED, version=version, settings=ExportSettings(), model_name=model_name
    )
