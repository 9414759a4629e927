"""Whether a deployment can be served: every version it names is loaded, and every version takes
the same features and gives the same classes as production. The API and the CLI share it."""

from typing import Any

from services.catalog import ModelCatalog, ServedModel
from services.deployments.state import DeploymentSpec
from services.errors import IncompatibleVersion, VersionNotLoaded

# What must agree between versions for a request valid for one to mean the same to the other.
# Training ranges (minimum, maximum) may differ: they come from each version's training data.
COMPARED_FIELDS = ("dtype", "categories", "missing", "impute_value")


def check_deployment(catalog: ModelCatalog, name: str, spec: DeploymentSpec) -> list[str]:
    """Raise VersionNotLoaded or IncompatibleVersion (409), or return warnings worth showing."""
    catalog.newest(name)  # ModelNotFound (404) for a model that is not served at all
    missing = [version for version in spec.versions if catalog.get(name, version) is None]
    if missing:
        raise not_loaded(catalog, name, missing)
    production = _served(catalog, name, spec.production)
    warnings = []
    for version in spec.versions[1:]:
        other = _served(catalog, name, version)
        differences = schema_differences(production, other)
        if differences:
            raise IncompatibleVersion(
                f"{other.ref.tag} does not take the same inputs or give the same classes as "
                f"production {production.ref.tag}: {_summary(differences)}",
                details={
                    "production": production.ref.tag,
                    "version": other.ref.tag,
                    "differences": differences,
                },
            )
        ranges = range_differences(production, other)
        if ranges:
            warnings.append(
                f"{other.ref.tag} was trained on other value ranges than {production.ref.tag} "
                f"for {_names(ranges)}: under SERVING_RANGE_POLICY=reject a row inside one "
                "version's range and outside the other's is accepted by one and refused by the "
                "other"
            )
    return warnings


def not_loaded(catalog: ModelCatalog, name: str, versions: list[str]) -> VersionNotLoaded:
    """The 409 for versions this service does not serve, saying how to serve them."""
    tags = [f"{name}:{version}" for version in versions]
    loaded = [model.ref.tag for model in catalog.versions(name)]
    how = (
        f"add {', '.join(tags)} to SERVING_MODELS (next to the versions served now) and redeploy: "
        "the runners load and verify only the versions listed at start, and a bento ships only "
        "those (rebuild it with that SERVING_MODELS: make bento)"
    )
    return VersionNotLoaded(
        f"{', '.join(tags)} {'is' if len(tags) == 1 else 'are'} not loaded by this service; {how}",
        details={"not_loaded": tags, "loaded": loaded, "how_to_load": how},
    )


def schema_differences(production: ServedModel, other: ServedModel) -> list[dict[str, Any]]:
    """How `other`'s features (names, order, types, categories, missing policy) and classes
    differ from production's; empty when a request means the same to both."""
    ours = {spec.name: spec for spec in production.metadata.feature_schema.features}
    theirs = {spec.name: spec for spec in other.metadata.feature_schema.features}
    differences: list[dict[str, Any]] = [
        {"feature": name, "problem": "missing", "message": f"{other.ref.version} lacks {name}"}
        for name in ours
        if name not in theirs
    ]
    differences += [
        {"feature": name, "problem": "extra", "message": f"{other.ref.version} also takes {name}"}
        for name in theirs
        if name not in ours
    ]
    for name in (name for name in ours if name in theirs):
        for field in COMPARED_FIELDS:
            mine, yours = getattr(ours[name], field), getattr(theirs[name], field)
            if mine != yours:
                differences.append(
                    {
                        "feature": name,
                        "problem": field,
                        "production": mine,
                        "version": yours,
                        "message": f"{name}: {field} {mine!r} in production, {yours!r} here",
                    }
                )
    common = [name for name in ours if name in theirs]
    if not differences and common != [name for name in theirs if name in ours]:
        differences.append({"problem": "order", "message": "the features come in another order"})
    classes = production.metadata.output_schema.classes, other.metadata.output_schema.classes
    if classes[0] != classes[1]:
        differences.append(
            {
                "problem": "classes",
                "production": list(classes[0]),
                "version": list(classes[1]),
                "message": f"classes {list(classes[0])} in production, {list(classes[1])} here",
            }
        )
    return differences


def range_differences(production: ServedModel, other: ServedModel) -> list[str]:
    """Features whose training range differs between the two versions."""
    theirs = {spec.name: spec for spec in other.metadata.feature_schema.features}
    return [
        spec.name
        for spec in production.metadata.feature_schema.features
        if spec.name in theirs
        and (spec.minimum, spec.maximum) != (theirs[spec.name].minimum, theirs[spec.name].maximum)
    ]


def _served(catalog: ModelCatalog, name: str, version: str) -> ServedModel:
    model = catalog.get(name, version)
    if model is None:
        raise not_loaded(catalog, name, [version])
    return model


def _names(names: list[str], shown: int = 5) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def _summary(differences: list[dict[str, Any]], shown: int = 3) -> str:
    messages = [str(difference["message"]) for difference in differences[:shown]]
    more = len(differences) - shown
    return "; ".join(messages) + (f"; and {more} more" if more > 0 else "")
