"""Run a reference recipe end to end: data -> train -> evaluate -> export."""

import tempfile
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from services.artifact.adapters import get_adapter
from services.artifact.digests import DATA_DIGEST_METHOD, DataDigest
from services.artifact.metadata import DataProvenance
from training_export import progress
from training_export.errors import ExportError
from training_export.export import ExportRequest, ensure_new_tag, export_model, frame_columns
from training_export.recipes import RECIPES, Recipe
from training_export.schema_inference import infer_schema
from training_export.settings import ExportSettings
from training_export.tables import frame_source
from training_export.validation import label_index

HOLDOUT_FRACTION = 0.25


def get_recipe(name: str) -> Recipe:
    """The recipe called `name`; ExportError listing the known ones otherwise."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ExportError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}") from None


def train_recipe(
    name: str,
    *,
    seed: int,
    version: str | None,
    settings: ExportSettings,
    model_name: str | None = None,
) -> str:
    """Train and export one recipe; return the stored tag."""
    recipe = get_recipe(name)
    model_name = model_name or recipe.name
    if version is not None:
        ensure_new_tag(model_name, version)
    with progress.step(f"{recipe.name}: loading data"):
        data = recipe.load_data(seed=seed, settings=settings)
        train, holdout = _split(data.frame, recipe.target, seed)
    schema = infer_schema(train, target=recipe.target)
    with progress.step(f"{recipe.name}: training on {len(train)} rows"):
        x = schema.encode_columns(frame_columns(train, schema))
        model = recipe.fit(
            x, label_index(train[recipe.target], recipe.classes), seed=seed, settings=settings
        )
    digest = DataDigest(train.columns)
    digest.update({str(column): train[column].to_numpy() for column in train.columns})
    training = DataProvenance(
        sha256=digest.hexdigest(),
        digest_method=DATA_DIGEST_METHOD,
        rows=len(train),
        source=data.source,
    )
    with tempfile.TemporaryDirectory(prefix="export-staging-") as staging:
        model_file = get_adapter(recipe.framework).save(model, Path(staging), example=x[:8])
        return export_model(
            ExportRequest(
                name=model_name,
                version=version,
                framework=recipe.framework,
                staging_dir=Path(staging),
                model_file=model_file,
                features=schema.features,
                target=recipe.target,
                classes=recipe.classes,
                eval_source=frame_source(holdout, batch_rows=settings.batch_rows),
                evaluation=DataProvenance(
                    sha256=None,
                    digest_method=DATA_DIGEST_METHOD,
                    rows=None,
                    source=f"{data.source} (holdout split)",
                ),
                training=training,
                seed=seed,
                recipe=recipe.name,
                hyperparameters=recipe.hyperparameters(seed=seed, settings=settings),
                golden_count=settings.golden_count,
                train_source=frame_source(train, batch_rows=settings.batch_rows),
            )
        )


def _split(frame: pd.DataFrame, target: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, holdout = train_test_split(
        frame, test_size=HOLDOUT_FRACTION, stratify=frame[target], random_state=seed
    )
    return train.reset_index(drop=True), holdout.reset_index(drop=True)
