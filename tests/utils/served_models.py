"""What the stored reference models promise, read from the model store: golden examples,
classes, features, and valid request rows made from them."""

from typing import Any

import bentoml


def _metadata(tag: str) -> dict[str, Any]:
    return dict(bentoml.models.get(tag).info.metadata)


def golden_examples(tag: str) -> dict[str, Any]:
    """The inputs and exact outputs `tag` recorded at export."""
    golden: dict[str, Any] = _metadata(tag)["golden_examples"]
    return golden


def output_classes(tag: str) -> list[Any]:
    """The model's classes, in the order of its probabilities."""
    classes: list[Any] = _metadata(tag)["output_schema"]["classes"]
    return classes


def feature_names(tag: str) -> list[str]:
    """The model's features, in its input order."""
    return [feature["name"] for feature in _metadata(tag)["feature_schema"]["features"]]


def distinct_rows(tag: str, count: int) -> list[dict[str, Any]]:
    """`count` valid rows, no two alike (so no result cache answers two of them): golden inputs
    with a ranged float feature spread evenly inside its training range or, for a model with
    integer features only, the row number written in digits over its ranged int features."""
    features = _metadata(tag)["feature_schema"]["features"]
    ranged = [
        f
        for f in features
        if f["dtype"] in ("float", "int") and f.get("maximum", 0.0) > f.get("minimum", 0.0)
    ]
    floats = [f for f in ranged if f["dtype"] == "float"]
    inputs = golden_examples(tag)["inputs"]
    rows = []
    for i in range(count):
        row = dict(inputs[i % len(inputs)])
        if floats:
            low, high = floats[0]["minimum"], floats[0]["maximum"]
            row[floats[0]["name"]] = low + (high - low) * (i + 1) / (count + 1)
        else:
            row.update(_digits(i, ranged, count))
        rows.append(row)
    return rows


def _digits(number: int, features: list[dict[str, Any]], count: int) -> dict[str, int]:
    """`number` in mixed radix over the int `features`, using as many as `count` needs."""
    values: dict[str, int] = {}
    capacity = 1
    for feature in features:
        if capacity >= count:
            break
        low, width = int(feature["minimum"]), int(feature["maximum"] - feature["minimum"]) + 1
        values[feature["name"]] = low + (number // capacity) % width
        capacity *= width
    if capacity < count:
        raise ValueError(f"cannot make {count} distinct rows from these features")
    return values
