"""The Open Inference Protocol front door over raw HTTP, in-process, with auth on and the
prediction log in PostgreSQL: the spec's documents, both input layouts, binary tensors, and
every error in the protocol's shape with the right status."""

import json
import struct
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio

from services.auth.settings import AuthSettings
from tests.utils.accounts import new_account
from tests.utils.databases import migrated_postgres
from tests.utils.gateway import gateway_client
from tests.utils.oip import feature_specs, inference_body, rest_outputs
from tests.utils.served_models import golden_examples, output_classes

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]
SECRET = "oip-tests-secret-" + "k" * 40
RECIPES = ("fraud-xgb", "cancer-rf", "digits-mlp")


# Bearer headers of real accounts (tokens are bound to an account's id and credential epoch),
# filled in once the module's database exists (fixture `client`).
WRITER: dict[str, str] = {}
READER: dict[str, str] = {}
BOTH: dict[str, str] = {}


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with migrated_postgres() as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(
    database: str, reference_models: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    auth = AuthSettings(enabled=True, jwt_secret=SECRET)
    for headers, name, scopes in (
        (WRITER, "oip-writer", ["predictions:write", "predictions:read"]),
        (READER, "oip-reader", ["models:read"]),
        (BOTH, "oip-both", ["predictions:write", "models:read"]),
    ):
        headers.update((await new_account(database, auth, name, scopes)).headers)
    tags = sorted(reference_models.values())
    async with gateway_client(tags, db_url=database, auth=auth) as (http, _):
        yield http


def _error(response: httpx.Response, status: int) -> str:
    """The protocol error's message, after checking status and shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert set(document) == {"error"}
    assert isinstance(document["error"], str)
    message: str = document["error"]
    return message


# health and metadata


async def test_health_and_server_metadata_answer_without_a_credential(
    client: httpx.AsyncClient,
) -> None:
    live = await client.get("/v2/health/live")
    ready = await client.get("/v2/health/ready")
    server = await client.get("/v2")

    assert (live.status_code, live.content) == (200, b"")
    assert (ready.status_code, ready.content) == (200, b"")
    assert server.status_code == 200
    assert server.json() == {
        "name": "model-packaging",
        "version": "1.0.0",
        "extensions": ["binary_tensor_data"],
    }


async def test_model_metadata_describes_the_feature_schema(
    client: httpx.AsyncClient, reference_models: dict[str, str]
) -> None:
    tag = reference_models["fraud-xgb"]
    name, version = tag.split(":")

    served = await client.get(f"/v2/models/{name}", headers=READER)
    pinned = await client.get(f"/v2/models/{name}/versions/{version}", headers=READER)
    ready = await client.get(f"/v2/models/{name}/versions/{version}/ready", headers=READER)

    assert served.status_code == 200
    assert pinned.json() == served.json()
    document = served.json()
    assert (document["name"], document["versions"], document["platform"]) == (
        name,
        [version],
        "xgboost",
    )
    assert [(t["name"], t["datatype"], t["shape"]) for t in document["inputs"]] == [
        (
            f["name"],
            {"float": "FP64", "int": "INT64", "bool": "BOOL", "category": "BYTES"}[f["dtype"]],
            [-1],
        )
        for f in feature_specs(tag)
    ]
    assert [(t["name"], t["datatype"], t["shape"]) for t in document["outputs"]] == [
        ("label", "BYTES", [-1]),
        ("probabilities", "FP64", [-1, 2]),
        ("prediction_id", "BYTES", [-1]),
        ("out_of_range", "BYTES", [-1]),
    ]
    assert document["parameters"]["matrix_input"] == "input"
    assert all("parameters" not in tensor for tensor in document["inputs"] + document["outputs"])
    assert ready.status_code == 200


# inference


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("layout", ["features", "matrix"])
async def test_inference_in_either_layout_gives_the_rest_outputs(
    client: httpx.AsyncClient, reference_models: dict[str, str], recipe: str, layout: Any
) -> None:
    tag = reference_models[recipe]
    name, version = tag.split(":")
    rows = golden_examples(tag)["inputs"]
    classes = output_classes(tag)

    rest = await client.post(
        "/api/v1/predictions", json={"model": name, "inputs": rows}, headers=WRITER
    )
    oip = await client.post(
        f"/v2/models/{name}/infer",
        json=inference_body(rows, feature_specs(tag), layout, id=f"golden-{layout}"),
        headers=WRITER,
    )

    assert rest.status_code == 201, rest.text
    assert oip.status_code == 200, oip.text
    document = oip.json()
    assert (document["model_name"], document["model_version"]) == (name, version)
    assert document["id"] == f"golden-{layout}"
    outputs = {output["name"]: output for output in document["outputs"]}
    assert list(outputs) == ["label", "probabilities", "prediction_id", "out_of_range"]
    assert outputs["probabilities"]["shape"] == [len(rows), len(classes)]
    labels, probabilities = rest_outputs(rest.json(), classes)
    assert outputs["label"]["data"] == labels
    assert outputs["probabilities"]["data"] == probabilities  # exactly, not approximately


async def test_binary_tensors_in_and_out(
    client: httpx.AsyncClient, reference_models: dict[str, str]
) -> None:
    tag = reference_models["cancer-rf"]
    rows = golden_examples(tag)["inputs"][:3]
    classes = output_classes(tag)
    matrix = np.array([[row[f["name"]] for f in feature_specs(tag)] for row in rows], "<f8")
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": list(matrix.shape),
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": matrix.nbytes},
                }
            ],
            "outputs": [
                {"name": "probabilities", "parameters": {"binary_data": True}},
                {"name": "label", "parameters": {"binary_data": True}},
            ],
        }
    ).encode()

    rest = await client.post(
        "/api/v1/predictions", json={"model": "cancer-rf", "inputs": rows}, headers=WRITER
    )
    oip = await client.post(
        "/v2/models/cancer-rf/infer",
        content=header + matrix.tobytes(),
        headers={**WRITER, "Inference-Header-Content-Length": str(len(header))},
    )

    assert oip.status_code == 200, oip.text
    length = int(oip.headers["inference-header-content-length"])
    document = json.loads(oip.content[:length])
    probabilities, label = document["outputs"]
    assert "data" not in probabilities
    assert "data" not in label
    assert label["datatype"] == "BYTES"
    assert probabilities["parameters"] == {"binary_data_size": len(rows) * len(classes) * 8}
    tail = oip.content[length:]
    cut = probabilities["parameters"]["binary_data_size"]
    expected_labels, expected_probabilities = rest_outputs(rest.json(), classes)
    assert np.frombuffer(tail[:cut], "<f8").tolist() == expected_probabilities
    assert _bytes_elements(tail[cut:]) == expected_labels


def _bytes_elements(raw: bytes) -> list[str]:
    values, offset = [], 0
    while offset < len(raw):
        (size,) = struct.unpack_from("<I", raw, offset)
        values.append(raw[offset + 4 : offset + 4 + size].decode())
        offset += 4 + size
    return values


async def test_predictions_are_in_the_log_with_the_caller(
    client: httpx.AsyncClient, reference_models: dict[str, str]
) -> None:
    tag = reference_models["fraud-xgb"]
    rows = golden_examples(tag)["inputs"][:2]

    oip = await client.post(
        "/v2/models/fraud-xgb/infer",
        json=inference_body(rows, feature_specs(tag), "features"),
        headers={**WRITER, "Cache-Control": "no-cache"},
    )
    ids = next(o["data"] for o in oip.json()["outputs"] if o["name"] == "prediction_id")
    records = [
        (await client.get(f"/api/v1/predictions/{i}", headers=WRITER)).json()["data"] for i in ids
    ]

    assert [record["inputs"] for record in records] == rows
    assert {record["principal"] for record in records} == {"oip-writer"}
    assert {record["model"]["version"] for record in records} == {tag.split(":")[1]}
    assert oip.headers["x-request-id"] in {record["request_id"] for record in records}


# errors: the protocol's shape, the REST statuses


def _fraud_body(**overrides: Any) -> dict[str, Any]:
    tensors = {
        "amount": ("FP64", [42.5]),
        "hour": ("INT64", [14]),
        "merchant_category": ("BYTES", ["grocery"]),
        "distance_from_home_km": ("FP64", [3.2]),
        "txn_count_1h": ("INT64", [1]),
        "card_present": ("BOOL", [True]),
        "account_age_days": ("INT64", [900]),
        "is_foreign": ("BOOL", [False]),
    }
    tensors.update(overrides)
    return {
        "inputs": [
            {"name": name, "shape": [len(data)], "datatype": datatype, "data": data}
            for name, (datatype, data) in tensors.items()
        ]
    }


async def test_a_valid_fraud_request_succeeds(client: httpx.AsyncClient) -> None:
    response = await client.post("/v2/models/fraud-xgb/infer", json=_fraud_body(), headers=WRITER)

    assert response.status_code == 200, response.text


async def test_no_credential_is_401_with_a_challenge(client: httpx.AsyncClient) -> None:
    infer = await client.post("/v2/models/fraud-xgb/infer", json=_fraud_body())
    metadata = await client.get("/v2/models/fraud-xgb")

    assert "bearer token or API key" in _error(infer, 401)
    _error(metadata, 401)
    assert infer.headers["www-authenticate"].startswith("Bearer")


async def test_a_credential_without_the_scope_is_403(client: httpx.AsyncClient) -> None:
    infer = await client.post("/v2/models/fraud-xgb/infer", json=_fraud_body(), headers=READER)
    metadata = await client.get("/v2/models/fraud-xgb", headers=WRITER)

    assert "predictions:write" in _error(infer, 403)
    assert "models:read" in _error(metadata, 403)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/models/nope/infer"),
        ("POST", "/v2/models/fraud-xgb/versions/nope/infer"),
        ("GET", "/v2/models/nope"),
        ("GET", "/v2/models/nope/ready"),
        ("GET", "/v2/models/fraud-xgb/versions/nope"),
        ("POST", "/v2/models/fraud-xgb:pinned/infer"),
    ],
)
async def test_unknown_models_and_versions_are_404(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path, json=_fraud_body(), headers=BOTH)

    assert "is not served" in _error(response, 404)


async def test_unknown_paths_and_methods_answer_in_the_protocol_shape(
    client: httpx.AsyncClient,
) -> None:
    unknown = await client.get("/v2/repository/index", headers=WRITER)
    wrong_method = await client.get("/v2/models/fraud-xgb/infer", headers=WRITER)

    assert _error(unknown, 404) == "No such resource."
    assert _error(wrong_method, 405) == "Method not allowed."


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{not json", "not a valid JSON"),
        (json.dumps({"inputs": []}).encode(), "inputs"),
        (
            json.dumps(
                {"inputs": [{"name": "amount", "shape": [2], "datatype": "FP64", "data": [1.0]}]}
            ).encode(),
            "needs 2 values",
        ),
        (
            json.dumps(
                {"inputs": [{"name": "amount", "shape": [1], "datatype": "FP64", "data": ["x"]}]}
            ).encode(),
            "does not match datatype FP64",
        ),
        (
            json.dumps({**_fraud_body(), "outputs": [{"name": "logits"}]}).encode(),
            "unknown output 'logits'",
        ),
    ],
    ids=["not-json", "no-inputs", "shape-vs-data", "datatype-vs-data", "unknown-output"],
)
async def test_malformed_requests_are_400(
    client: httpx.AsyncClient, content: bytes, fragment: str
) -> None:
    response = await client.post("/v2/models/fraud-xgb/infer", content=content, headers=WRITER)

    assert fragment in _error(response, 400)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"amount": ("FP64", [1e9])}, "row 0 amount: out_of_range"),
        ({"merchant_category": ("BYTES", ["casino"])}, "merchant_category: unknown_category"),
        ({"merchant_category": ("FP64", [1.0])}, "merchant_category: wrong_datatype"),
        ({"hour": ("FP64", [14.5])}, "hour: wrong_type"),
        ({"amount_usd": ("FP64", [1.0])}, "amount_usd: unknown_feature"),
        ({"amount": ("FP64", [1.0, 2.0])}, "batch_mismatch"),
    ],
    ids=["out-of-range", "unknown-category", "wrong-datatype", "not-integral", "unknown", "n"],
)
async def test_requests_that_do_not_fit_the_model_are_422(
    client: httpx.AsyncClient, overrides: dict[str, Any], fragment: str
) -> None:
    response = await client.post(
        "/v2/models/fraud-xgb/infer", json=_fraud_body(**overrides), headers=WRITER
    )

    assert fragment in _error(response, 422)


async def test_a_matrix_of_the_wrong_width_is_422(client: httpx.AsyncClient) -> None:
    body = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}

    response = await client.post("/v2/models/cancer-rf/infer", json=body, headers=WRITER)

    assert "expected shape [N, 30], got [1, 3]" in _error(response, 422)
