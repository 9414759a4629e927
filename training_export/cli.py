"""`python -m training_export`: train reference models, export your own, inspect the store."""

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from training_export.settings import ExportSettings, default_bentoml_home

DESCRIPTION = """\
Train the reference models and export any trained model into the BentoML model store as a
versioned, verifiable artifact: feature schema, holdout metrics, data and file digests, seed,
library versions, git commit and golden examples. An existing tag is never overwritten.

The store is $BENTOML_HOME (default: .bentoml/ in this repository)."""

EXPORT_EPILOG = """\
schema file (JSON):
  {"target": "label",
   "classes": [0, 1],
   "features": [{"name": "amount", "dtype": "float"},
                {"name": "channel", "dtype": "category", "categories": ["web", "store"]},
                {"name": "age", "dtype": "int", "missing": "impute", "impute_value": 40}]}
  dtype is one of float, int, bool, category; categories are listed in the model's
  encoding order (index 0, 1, ...); missing is "reject" (default) or "impute".
  classes default to the model's own (scikit-learn) or the sorted labels of the data.
  Ranges (minimum, maximum) default to those observed in --train-data, else --eval-data.

model files:
  sklearn  a joblib file of a fitted classifier with predict_proba (.joblib; loading it
           runs pickle, so export only files you trust)
  xgboost  a Booster saved with a probability objective (.json or .ubj)
  torch    a program saved with torch.export.save (.pt2) taking one float32
           [batch, features] tensor (dynamic batch dimension) and returning class
           logits; its pickled example inputs are dropped on import. TorchScript
           (.pt) is deprecated but still accepted, with a warning"""


def build_parser() -> argparse.ArgumentParser:
    """The CLI's arguments; `--help` on each command explains it."""
    from training_export.recipes import RECIPES

    parser = argparse.ArgumentParser(
        prog="python -m training_export",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    recipes = "\n".join(f"  {name:12} {recipe.description}" for name, recipe in RECIPES.items())
    train = commands.add_parser(
        "train",
        help="train a reference recipe and export it (data -> train -> evaluate -> export)",
        description="Train a built-in reference recipe and export it to the model store.",
        epilog=f"recipes:\n{recipes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("recipe", nargs="?", metavar="RECIPE", help="recipe name (see below)")
    train.add_argument("--all", action="store_true", help="train every reference recipe")
    train.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    train.add_argument("--version", help="model version (default: derived from the content)")
    train.add_argument(
        "--skip-existing",
        action="store_true",
        help="skip recipes whose model name already has a version in the store",
    )

    export = commands.add_parser(
        "export",
        help="export a model you trained yourself",
        description="Export your own trained model with its feature schema and held-out data.",
        epilog=EXPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("--framework", required=True, help="sklearn, xgboost or torch")
    export.add_argument("--model", required=True, type=Path, metavar="FILE", help="model file")
    export.add_argument(
        "--schema",
        required=True,
        type=Path,
        metavar="FILE",
        help="feature schema (JSON, see below)",
    )
    export.add_argument(
        "--eval-data",
        required=True,
        type=Path,
        metavar="FILE",
        help="held-out data with the target column (Parquet or CSV)",
    )
    export.add_argument(
        "--train-data",
        type=Path,
        metavar="FILE",
        help="training data: digested and used for the allowed ranges and the reference "
        "distribution for drift (optional; without it both come from --eval-data)",
    )
    export.add_argument("--name", required=True, help="model name in the store")
    export.add_argument("--version", help="model version (default: derived from the content)")
    export.add_argument("--seed", type=int, help="the seed the model was trained with, if any")

    listing = commands.add_parser(
        "list",
        help="list the models in the store",
        description="List the models in the store, newest first.",
    )
    listing.add_argument("name", nargs="?", help="only versions of this model")
    listing.add_argument("--json", action="store_true", help="print JSON")

    show = commands.add_parser(
        "show",
        help="show one model's metadata",
        description="Show one model's contract: schema, metrics, digests.",
    )
    show.add_argument("tag", metavar="NAME[:VERSION]")
    show.add_argument("--json", action="store_true", help="print the full metadata as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; 0 on success, 1 on a reported error, 2 on a usage error."""
    os.environ.setdefault("BENTOML_HOME", str(default_bentoml_home()))
    args = build_parser().parse_args(argv)
    from services.errors import AppError
    from training_export.errors import ExportError

    try:
        settings = ExportSettings()
        if args.command == "train":
            return _train(args, settings)
        if args.command == "export":
            return _export(args, settings)
        if args.command == "list":
            return _list(args)
        return _show(args)
    except (ExportError, AppError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; nothing was written to the store", file=sys.stderr)
        return 130


def _train(args: argparse.Namespace, settings: ExportSettings) -> int:
    from training_export.errors import ExportError
    from training_export.recipes import RECIPES
    from training_export.store import model_names
    from training_export.train import get_recipe, train_recipe

    if args.all == bool(args.recipe):
        raise ExportError("name one RECIPE or pass --all")
    names = list(RECIPES) if args.all else [get_recipe(args.recipe).name]
    if args.version and len(names) > 1:
        raise ExportError("--version applies to one recipe at a time")
    existing = model_names() if args.skip_existing else set()
    for name in names:
        if name in existing:
            print(f"{name}: already in the store, skipped")
            continue
        tag = train_recipe(name, seed=args.seed, version=args.version, settings=settings)
        print(f"exported {tag}")
    return 0


def _export(args: argparse.Namespace, settings: ExportSettings) -> int:
    from training_export.byo import OwnModel, export_own_model

    own = OwnModel(
        framework=args.framework,
        model=args.model,
        schema=args.schema,
        eval_data=args.eval_data,
        train_data=args.train_data,
        name=args.name,
        version=args.version,
        seed=args.seed,
    )
    print(f"exported {export_own_model(own, settings)}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from training_export.store import list_models

    models = list_models(args.name)
    if args.json:
        rows = [
            {
                "tag": m.tag,
                "framework": m.framework,
                "stage": m.stage,
                "created": m.created,
                "size": m.size,
                "metrics": m.metrics,
            }
            for m in models
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not models:
        print("the store is empty: try `python -m training_export train --all`")
        return 0
    print(f"{'TAG':40} {'FRAMEWORK':9} {'STAGE':10} {'CREATED':19} {'SIZE':>9}  HEADLINE METRIC")
    for m in models:
        headline = _headline(m.metrics)
        print(f"{m.tag:40} {m.framework:9} {m.stage:10} {m.created:19} {m.size:>9}  {headline}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from training_export.reference import reference_lines
    from training_export.store import get_model

    model = get_model(args.tag)
    if args.json:
        print(
            json.dumps(
                {"tag": model.tag, "labels": model.labels, "metadata": model.metadata}, indent=2
            )
        )
        return 0
    meta = model.metadata
    print(f"{model.tag}  ({model.framework}, stage={model.stage}, {model.size})")
    print(f"created: {model.created}")
    print(f"recipe: {meta.get('recipe')}  seed: {meta.get('seed')}  git: {meta.get('git_commit')}")
    print(f"training data sha256: {meta.get('training_data', {}).get('sha256')}")
    print("artifact files:")
    for name, digest in meta.get("artifact_files", {}).items():
        print(f"  {name}  sha256 {digest}")
    print("features:")
    for feature in meta.get("feature_schema", {}).get("features", []):
        print(f"  {_feature_line(feature)}")
    print(f"classes: {meta.get('output_schema', {}).get('classes')}")
    for line in reference_lines(meta.get("reference_distribution")):
        print(line)
    print("holdout metrics:")
    for name, value in model.metrics.items():
        print(f"  {name:18} {value:.6f}")
    print(
        f"golden examples: {len(meta.get('golden_examples', {}).get('inputs', []))}"
        f"  (see --json for all metadata)"
    )
    return 0


def _feature_line(feature: dict[str, object]) -> str:
    name, dtype = feature["name"], feature["dtype"]
    if dtype == "category":
        return f"{name:28} category {feature['categories']}"
    if feature.get("minimum") is not None:
        allowed = f"[{feature['minimum']}, {feature['maximum']}]"
        return f"{name:28} {dtype:8} {allowed}  missing={feature['missing']}"
    return f"{name:28} {dtype:8} missing={feature['missing']}"


def _headline(metrics: dict[str, float]) -> str:
    for name in ("roc_auc", "accuracy"):
        if name in metrics:
            return f"{name}={metrics[name]:.4f}"
    return ""
