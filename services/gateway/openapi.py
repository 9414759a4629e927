"""The OpenAPI document as this deployment serves it.

The committed document (services/gateway/openapi.json, `make openapi`) is the API contract: it
types every prediction row as an object of scalar feature values. A running gateway refines
exactly one schema of it, `PredictionCreate`, into a `oneOf` with one request shape per served
model, generated from the model's feature schema (types, categories, required features, and
the training ranges when out-of-range values are refused), so clients and fuzzers see the real
parameter space. Everything else is served exactly as committed.
"""

import copy
from typing import Any

from services.artifact.schema import FeatureSpec
from services.catalog import ServedModel
from services.pipeline.validation import FLOAT32_MAX
from services.settings import ServingSettings


def with_served_models(
    document: dict[str, Any], models: list[ServedModel], settings: ServingSettings
) -> dict[str, Any]:
    """`document` with `PredictionCreate` as one request shape per served model."""
    if not models:
        return document
    refined = copy.deepcopy(document)
    schemas = refined["components"]["schemas"]
    generic = schemas["PredictionCreate"]
    variants = []
    for model in models:
        name = f"PredictionCreate.{model.ref.name}"
        schemas[name] = prediction_schema(model, settings)
        variants.append({"$ref": f"#/components/schemas/{name}"})
    schemas["PredictionCreate"] = {
        "title": generic["title"],
        "description": generic["description"] + " One shape per served model.",
        "oneOf": variants,
    }
    return refined


def prediction_schema(model: ServedModel, settings: ServingSettings) -> dict[str, Any]:
    """The request body that predicts with `model`: its name (or tag) and its rows."""
    features = model.metadata.feature_schema.features
    row = {
        "type": "object",
        "additionalProperties": False,
        "properties": {spec.name: value_schema(spec, settings) for spec in features},
        "required": [spec.name for spec in features if spec.missing == "reject"],
    }
    # Model names and versions are [A-Za-z0-9._-]; only the dot means something in a pattern.
    name, version = (part.replace(".", "\\.") for part in (model.ref.name, model.ref.version))
    return {
        "title": f"PredictionCreate.{model.ref.name}",
        "type": "object",
        "additionalProperties": False,
        "required": ["model", "inputs"],
        "properties": {
            "model": {
                "type": "string",
                "pattern": f"^{name}(:{version})?$",
                "description": f"`{model.ref.name}` or `{model.ref.tag}`",
            },
            "inputs": {
                "type": "array",
                "minItems": 1,
                "maxItems": settings.max_rows,
                "items": row,
            },
        },
    }


def value_schema(spec: FeatureSpec, settings: ServingSettings) -> dict[str, Any]:
    """What one feature accepts."""
    schema: dict[str, Any]
    if spec.dtype == "category":
        schema = {"type": "string", "enum": list(spec.categories or ())}
    elif spec.dtype == "bool":
        schema = {"type": "boolean"}
    else:
        ranged = settings.range_policy == "reject"
        low = spec.minimum if ranged and spec.minimum is not None else -FLOAT32_MAX
        high = spec.maximum if ranged and spec.maximum is not None else FLOAT32_MAX
        kind = "integer" if spec.dtype == "int" else "number"
        schema = {"type": kind, "minimum": low, "maximum": high}
    if spec.missing == "impute":
        return {"anyOf": [schema, {"type": "null"}], "description": "missing or null: imputed"}
    return schema
