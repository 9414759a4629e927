"""Every front door of one real `bentoml serve` with auth on, called with its own client:
REST with httpx, the Open Inference Protocol with tritonclient, the predict API with BentoML's
sync and async HTTP clients, batch jobs with a multipart upload. The same rows give the same
outputs through each, and each enforces the same credentials (401), scopes (403), validation
(422) and models (404)."""

import asyncio
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import bentoml
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tritonclient.http as triton
from bentoml.exceptions import BentoMLException, NotFound, UnprocessableEntity
from tritonclient.utils import InferenceServerException

from tests.utils.accounts import create_admin_cli
from tests.utils.databases import migrated_postgres
from tests.utils.oip import Layout, feature_specs, numpy_inputs, rest_outputs
from tests.utils.served_models import golden_examples, output_classes
from tests.utils.server import serve_gateway

pytestmark = pytest.mark.e2e
RECIPES = ("fraud-xgb", "cancer-rf", "digits-mlp")
ADMIN, PASSWORD = "doors-admin", "front doors admin password"
BAD_FRAUD_ROW = {"amount": "lots"}


@dataclass(frozen=True)
class Doors:
    """The served gateway and three credentials: full, models:read only, and none."""

    base_url: str
    writer_key: str  # predictions:write, predictions:read, models:read
    reader_key: str  # models:read only

    @property
    def host(self) -> str:
        return self.base_url.removeprefix("http://")

    def rest(self, key: str, model: str, rows: list[dict[str, Any]]) -> httpx.Response:
        return httpx.post(
            f"{self.base_url}/api/v1/predictions",
            json={"model": model, "inputs": rows},
            headers={"X-API-Key": key},
            timeout=30,
        )


@pytest.fixture(scope="module")
def doors(reference_models: dict[str, str]) -> Iterator[Doors]:
    with migrated_postgres() as database:
        created = create_admin_cli(ADMIN, PASSWORD, {"DB_URL": database})
        assert created.returncode == 0, created.stderr
        env = {
            "DB_URL": database,
            "AUTH_ENABLED": "true",
            "RATE_LIMIT_ENABLED": "false",  # limits have their own tests; many calls here
            "SERVING_MODELS": ",".join(sorted(reference_models.values())),
        }
        with serve_gateway(env=env) as server, httpx.Client(base_url=server.base_url) as http:
            token = http.post(
                "/api/v1/auth/token",
                data={"grant_type": "password", "username": ADMIN, "password": PASSWORD},
            ).json()["access_token"]
            as_admin = {"Authorization": f"Bearer {token}"}
            keys = []
            for name, scopes in (
                ("doors-writer", ["predictions:write", "predictions:read", "models:read"]),
                ("doors-reader", ["models:read"]),
            ):
                user = http.post(
                    "/api/v1/users",
                    json={"username": name, "password": PASSWORD, "scopes": scopes},
                    headers=as_admin,
                ).json()["data"]
                created_key = http.post(
                    "/api/v1/api-keys",
                    json={"name": name, "user_id": user["id"]},
                    headers=as_admin,
                )
                assert created_key.status_code == 201, created_key.text
                keys.append(created_key.json()["data"]["key"])
            yield Doors(server.base_url, writer_key=keys[0], reader_key=keys[1])


# the Open Inference Protocol, with tritonclient


def _triton_infer(
    doors: Doors, tag: str, rows: list[dict[str, Any]], layout: Layout, *, binary: bool
) -> Any:
    client = triton.InferenceServerClient(url=doors.host, network_timeout=30.0)
    inputs = []
    for name, array, datatype in numpy_inputs(rows, feature_specs(tag), layout):
        tensor = triton.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    outputs = [
        triton.InferRequestedOutput(name, binary_data=binary)
        for name in ("label", "probabilities", "prediction_id")
    ]
    return client.infer(
        tag.split(":")[0],
        inputs,
        outputs=outputs if not binary else None,  # None: the client asks for binary outputs
        request_id=f"{layout}-{binary}",
        headers={"X-API-Key": doors.writer_key},
    )


def test_tritonclient_server_and_model_metadata(
    doors: Doors, reference_models: dict[str, str]
) -> None:
    client = triton.InferenceServerClient(url=doors.host)
    headers = {"X-API-Key": doors.reader_key}

    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    for recipe in RECIPES:
        tag = reference_models[recipe]
        metadata = client.get_model_metadata(recipe, headers=headers)
        assert client.is_model_ready(recipe, tag.split(":")[1], headers=headers)
        assert [tensor["name"] for tensor in metadata["inputs"]] == [
            feature["name"] for feature in feature_specs(tag)
        ]
        assert metadata["outputs"][1]["shape"] == [-1, len(output_classes(tag))]


@pytest.mark.parametrize("recipe", RECIPES)
def test_tritonclient_outputs_equal_rest_in_both_layouts(
    doors: Doors, reference_models: dict[str, str], recipe: str
) -> None:
    tag = reference_models[recipe]
    rows = golden_examples(tag)["inputs"]
    rest = doors.rest(doors.writer_key, recipe, rows)
    assert rest.status_code == 201, rest.text
    labels, probabilities = rest_outputs(rest.json(), output_classes(tag))

    for layout, binary in (("features", True), ("matrix", False)):
        result = _triton_infer(doors, tag, rows, layout, binary=binary)

        assert result.get_response()["id"] == f"{layout}-{binary}"
        assert result.as_numpy("probabilities").reshape(-1).tolist() == probabilities
        got = result.as_numpy("label").tolist()
        assert [v.decode() if isinstance(v, bytes) else v for v in got] == labels
        logged = httpx.get(
            f"{doors.base_url}/api/v1/predictions/{_text(result.as_numpy('prediction_id')[0])}",
            headers={"X-API-Key": doors.writer_key},
        )
        assert logged.status_code == 200
        assert logged.json()["data"]["inputs"] == rows[0]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _triton_error(
    doors: Doors, model: str, rows: list[dict[str, Any]], tag: str, key: str | None
) -> Any:
    """The exception tritonclient raises for `rows` (with the features of `tag`) to `model`."""
    client = triton.InferenceServerClient(url=doors.host)
    inputs = []
    for name, array, datatype in numpy_inputs(rows, feature_specs(tag), "features"):
        tensor = triton.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    headers = {"X-API-Key": key} if key else None
    with pytest.raises(InferenceServerException) as raised:
        client.infer(model, inputs, headers=headers)
    return raised.value


def test_tritonclient_sees_401_403_404_and_422(
    doors: Doors, reference_models: dict[str, str]
) -> None:
    tag = reference_models["fraud-xgb"]
    good = golden_examples(tag)["inputs"][:1]
    out_of_range = [{**good[0], "amount": 1e9}]

    anonymous = _triton_error(doors, "fraud-xgb", good, tag, None)
    narrow = _triton_error(doors, "fraud-xgb", good, tag, doors.reader_key)
    unknown = _triton_error(doors, "no-such-model", good, tag, doors.writer_key)
    invalid = _triton_error(doors, "fraud-xgb", out_of_range, tag, doors.writer_key)

    assert (anonymous.status(), narrow.status(), unknown.status(), invalid.status()) == (
        "401",
        "403",
        "404",
        "422",
    )
    assert "predictions:write" in narrow.message()
    assert "not served" in unknown.message()
    assert "amount: out_of_range" in invalid.message()


# the predict API, with BentoML's own clients


def _outputs(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [prediction["outputs"] for prediction in document["data"]["predictions"]]


def test_bentoml_clients_outputs_equal_rest(doors: Doors, reference_models: dict[str, str]) -> None:
    with bentoml.SyncHTTPClient(doors.base_url, token=doors.writer_key) as client:
        for recipe in RECIPES:
            rows = golden_examples(reference_models[recipe])["inputs"]
            rest = doors.rest(doors.writer_key, recipe, rows)

            answer = client.predict(model=recipe, inputs=rows)

            assert answer["data"]["model"] == rest.json()["data"]["model"]
            assert _outputs(answer) == _outputs(rest.json())
            logged = httpx.get(
                f"{doors.base_url}/api/v1/predictions/{answer['data']['predictions'][0]['id']}",
                headers={"X-API-Key": doors.writer_key},
            )
            assert logged.json()["data"]["inputs"] == rows[0]

    async def call_async() -> dict[str, Any]:
        async with bentoml.AsyncHTTPClient(doors.base_url, token=doors.writer_key) as client:
            answer: dict[str, Any] = await client.predict(
                model="cancer-rf", inputs=golden_examples(reference_models["cancer-rf"])["inputs"]
            )
            return answer

    rows = golden_examples(reference_models["cancer-rf"])["inputs"]
    assert _outputs(asyncio.run(call_async())) == _outputs(
        doors.rest(doors.writer_key, "cancer-rf", rows).json()
    )


def _bentoml_error(doors: Doors, token: str | None, model: str, rows: list[Any]) -> Any:
    with (
        bentoml.SyncHTTPClient(doors.base_url, token=token) as client,
        pytest.raises(BentoMLException) as raised,
    ):
        client.predict(model=model, inputs=rows)
    return raised.value


def test_bentoml_client_sees_401_403_404_and_422(
    doors: Doors, reference_models: dict[str, str]
) -> None:
    good = golden_examples(reference_models["fraud-xgb"])["inputs"][:1]

    anonymous = _bentoml_error(doors, None, "fraud-xgb", good)
    narrow = _bentoml_error(doors, doors.reader_key, "fraud-xgb", good)
    unknown = _bentoml_error(doors, doors.writer_key, "no-such-model", good)
    invalid = _bentoml_error(doors, doors.writer_key, "fraud-xgb", [BAD_FRAUD_ROW])

    assert anonymous.error_code == HTTPStatus.UNAUTHORIZED
    assert narrow.error_code == HTTPStatus.FORBIDDEN
    assert "predictions:write" in str(narrow)
    assert isinstance(unknown, NotFound)
    assert '"model_not_found"' in str(unknown)
    assert isinstance(invalid, UnprocessableEntity)
    assert '"validation_error"' in str(invalid)


def test_rest_sees_401_403_404_and_422(doors: Doors, reference_models: dict[str, str]) -> None:
    good = golden_examples(reference_models["fraud-xgb"])["inputs"][:1]
    anonymous = httpx.post(
        f"{doors.base_url}/api/v1/predictions", json={"model": "fraud-xgb", "inputs": good}
    )

    statuses = (
        anonymous.status_code,
        doors.rest(doors.reader_key, "fraud-xgb", good).status_code,
        doors.rest(doors.writer_key, "no-such-model", good).status_code,
        doors.rest(doors.writer_key, "fraud-xgb", [BAD_FRAUD_ROW]).status_code,
    )

    assert statuses == (401, 403, 404, 422)


# batch jobs, with plain HTTP (multipart upload, then polling and a Parquet download)


def _parquet(rows: list[dict[str, Any]]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


def _submit(doors: Doors, key: str | None, model: str, content: bytes) -> httpx.Response:
    return httpx.post(
        f"{doors.base_url}/api/v1/jobs",
        data={"model": model},
        files={"file": ("rows.parquet", content, "application/octet-stream")},
        headers={"X-API-Key": key} if key else {},
        timeout=30,
    )


def test_batch_jobs_outputs_equal_rest(doors: Doors, reference_models: dict[str, str]) -> None:
    headers = {"X-API-Key": doors.writer_key}
    for recipe in RECIPES:
        tag = reference_models[recipe]
        rows = golden_examples(tag)["inputs"]
        rest = _outputs(doors.rest(doors.writer_key, recipe, rows).json())
        accepted = _submit(doors, doors.writer_key, recipe, _parquet(rows))
        assert accepted.status_code == 202, accepted.text

        deadline = time.monotonic() + 60
        while True:
            location = f"{doors.base_url}{accepted.headers['location']}"
            job = httpx.get(location, headers=headers).json()["data"]
            if job["status"] not in ("queued", "running") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert job["status"] == "succeeded", job
        result = pq.read_table(
            io.BytesIO(httpx.get(f"{doors.base_url}{job['result']}", headers=headers).content)
        ).to_pylist()

        classes = output_classes(tag)
        assert [
            {
                "label": row["label"],
                "score": row["score"],
                "probabilities": {str(c): row[f"probability_{c}"] for c in classes},
                "out_of_range": [],
            }
            for row in result
        ] == rest, recipe
        assert {row["model_version"] for row in result} == {tag.split(":")[1]}


def test_batch_jobs_see_401_403_404_and_422(doors: Doors, reference_models: dict[str, str]) -> None:
    good = _parquet(golden_examples(reference_models["fraud-xgb"])["inputs"][:1])

    statuses = (
        _submit(doors, None, "fraud-xgb", good).status_code,
        _submit(doors, doors.reader_key, "fraud-xgb", good).status_code,
        _submit(doors, doors.writer_key, "no-such-model", good).status_code,
        _submit(doors, doors.writer_key, "fraud-xgb", _parquet([BAD_FRAUD_ROW])).status_code,
    )

    assert statuses == (401, 403, 404, 422)
