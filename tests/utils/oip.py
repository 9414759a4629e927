"""Open Inference Protocol requests made from REST rows, for the tests that compare doors.

    inference_body(rows, features, layout="features")  # the spec's JSON request document
    numpy_inputs(rows, features, layout="matrix")      # (name, array, datatype) for tritonclient

`features` is the model's feature schema as stored (`feature_specs(tag)`); `layout` is
"features" (one tensor per feature: FP64, INT64, BOOL or BYTES by feature dtype) or "matrix"
(one FP64 tensor `input` of shape [N, n_features]: categories as their index, booleans as 0/1).
"""

from typing import Any, Literal

import bentoml
import numpy as np
import numpy.typing as npt

Layout = Literal["features", "matrix"]
DATATYPES = {"float": "FP64", "int": "INT64", "bool": "BOOL", "category": "BYTES"}
NUMPY = {"FP64": np.float64, "INT64": np.int64, "BOOL": np.bool_, "BYTES": np.object_}


def feature_specs(tag: str) -> list[dict[str, Any]]:
    """The stored feature schema of `tag`, in input order."""
    features: list[dict[str, Any]] = bentoml.models.get(tag).info.metadata["feature_schema"][
        "features"
    ]
    return features


def numpy_inputs(
    rows: list[dict[str, Any]], features: list[dict[str, Any]], layout: Layout
) -> list[tuple[str, npt.NDArray[Any], str]]:
    """The rows as protocol input tensors: (name, array, datatype)."""
    if layout == "matrix":
        matrix = np.array([[_code(f, row[f["name"]]) for f in features] for row in rows])
        return [("input", matrix.astype(np.float64), "FP64")]
    tensors = []
    for feature in features:
        datatype = DATATYPES[feature["dtype"]]
        values = [row[feature["name"]] for row in rows]
        tensors.append((feature["name"], np.array(values, dtype=NUMPY[datatype]), datatype))
    return tensors


def inference_body(
    rows: list[dict[str, Any]], features: list[dict[str, Any]], layout: Layout, **extra: Any
) -> dict[str, Any]:
    """The JSON inference request for `rows`."""
    return {
        "inputs": [
            {
                "name": name,
                "shape": list(array.shape),
                "datatype": datatype,
                "data": array.reshape(-1).tolist(),
            }
            for name, array, datatype in numpy_inputs(rows, features, layout)
        ],
        **extra,
    }


def rest_outputs(document: dict[str, Any], classes: list[Any]) -> tuple[list[str], list[float]]:
    """A REST prediction envelope's labels (as text) and probabilities (row-major, class order)."""
    predictions = document["data"]["predictions"]
    labels = [str(p["outputs"]["label"]) for p in predictions]
    probabilities = [p["outputs"]["probabilities"][str(c)] for p in predictions for c in classes]
    return labels, probabilities


def _code(feature: dict[str, Any], value: Any) -> float:
    if feature["dtype"] == "category":
        return float(feature["categories"].index(value))
    return float(value)
