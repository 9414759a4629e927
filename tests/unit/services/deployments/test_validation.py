"""A deployment is checked before it is stored: versions loaded, same features and classes."""

from typing import Any

import pytest
from pydantic import ValidationError

from services.artifact.schema import FeatureSchema, FeatureSpec
from services.catalog import ModelCatalog
from services.deployments.state import CanarySpec, DeploymentSpec
from services.deployments.validation import check_deployment, schema_differences
from services.deployments.views import schema_digest
from services.errors import IncompatibleVersion, ModelNotFound, VersionNotLoaded
from tests.utils.factories import served_model, tiny_schema


def _schema(**changes: dict[str, Any]) -> FeatureSchema:
    """The tiny schema with some features' fields changed (a value None drops the feature)."""
    features = []
    for spec in tiny_schema().features:
        change = changes.get(spec.name, {})
        if change is not None:
            features.append(FeatureSpec(**{**spec.model_dump(), **change}))
    return FeatureSchema(features=tuple(features))


def _catalog(other_schema: FeatureSchema | None = None, classes: Any = (0, 1)) -> ModelCatalog:
    return ModelCatalog(
        [
            served_model("m", "v1", age_days=1),
            served_model("m", "v2", schema=other_schema, classes=classes),
        ]
    )


def test_a_compatible_canary_passes() -> None:
    spec = DeploymentSpec(production="v1", canary=CanarySpec(version="v2", weight=0.1))

    assert check_deployment(_catalog(), "m", spec) == []


def test_other_training_ranges_pass_with_a_warning() -> None:
    spec = DeploymentSpec(production="v1", shadow=("v2",))
    other = _schema(size={"minimum": 0.0, "maximum": 5.0})

    (warning,) = check_deployment(_catalog(other), "m", spec)

    assert "size" in warning
    assert "SERVING_RANGE_POLICY" in warning
    assert schema_digest(_catalog(other).get("m", "v1")) == schema_digest(
        _catalog(other).get("m", "v2")
    )


def test_a_version_not_loaded_is_a_conflict_that_says_how_to_load_it() -> None:
    spec = DeploymentSpec(production="v1", canary=CanarySpec(version="v7", weight=0.1))

    with pytest.raises(VersionNotLoaded) as raised:
        check_deployment(_catalog(), "m", spec)

    assert raised.value.status_code == 409
    assert "m:v7" in raised.value.message
    assert "SERVING_MODELS" in raised.value.message
    assert raised.value.details["not_loaded"] == ["m:v7"]
    assert raised.value.details["loaded"] == ["m:v2", "m:v1"]


def test_an_unknown_model_is_not_found() -> None:
    with pytest.raises(ModelNotFound):
        check_deployment(_catalog(), "other", DeploymentSpec(production="v1"))


@pytest.mark.parametrize(
    ("other", "classes", "problems"),
    [
        (_schema(color=None), (0, 1), [("color", "missing")]),
        (_schema(size={"dtype": "int"}), (0, 1), [("size", "dtype")]),
        (
            _schema(color={"categories": ("red", "green", "blue", "black")}),
            (0, 1),
            [("color", "categories")],
        ),
        (
            _schema(count={"missing": "impute", "impute_value": 3.0}),
            (0, 1),
            [("count", "missing"), ("count", "impute_value")],
        ),
        (None, ("no", "yes"), [(None, "classes")]),
    ],
)
def test_incompatible_versions_are_a_conflict_listing_each_difference(
    other: FeatureSchema | None, classes: Any, problems: list[tuple[str | None, str]]
) -> None:
    catalog = _catalog(other, classes)
    spec = DeploymentSpec(production="v1", shadow=("v2",))

    with pytest.raises(IncompatibleVersion) as raised:
        check_deployment(catalog, "m", spec)

    differences = raised.value.details["differences"]
    assert [(d.get("feature"), d["problem"]) for d in differences] == problems
    assert raised.value.details["version"] == "m:v2"
    assert differences[0]["message"] in raised.value.message


def test_features_in_another_order_differ() -> None:
    reordered = FeatureSchema(features=tuple(reversed(tiny_schema().features)))
    catalog = _catalog(reordered)

    differences = schema_differences(catalog.get("m", "v1"), catalog.get("m", "v2"))

    assert [d["problem"] for d in differences] == ["order"]


@pytest.mark.parametrize(
    "document",
    [
        {"production": "v1", "canary": {"version": "v1", "weight": 0.1}},
        {"production": "v1", "shadow": ["v2", "v2"]},
        {"production": "v1", "shadow": ["v1"]},
        {"production": "v1", "canary": {"version": "v2", "weight": 0.1}, "shadow": ["v2"]},
        {"production": "v1", "canary": {"version": "v2", "weight": 1.5}},
        {"production": "v1", "canary": {"version": "v2", "weight": -0.1}},
        {"production": "v1", "canary": {"version": "v2", "weight": 0.1, "sticky": "cookie"}},
        {"production": "v1", "shadow": ["a", "b", "c", "d"]},
        {"production": "../v1"},
        {"production": "v1", "extra": True},
    ],
)
def test_malformed_deployments_are_refused(document: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        DeploymentSpec.model_validate(document)
