"""Batch jobs through the real Gateway in-process: a file in, the same outputs as REST out."""

import io
import time
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from starlette.testclient import TestClient

from tests.utils.served_models import golden_examples, output_classes

pytestmark = pytest.mark.integration
RECIPES = ("fraud-xgb", "cancer-rf", "digits-mlp")


def parquet_bytes(rows: list[dict[str, Any]], **extra: list[Any]) -> bytes:
    table = pa.Table.from_pylist(rows)
    for name, values in extra.items():
        table = table.append_column(name, pa.array(values))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def wait_for(client: TestClient, job_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}").json()["data"]
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def submit(client: TestClient, model: str, content: bytes, **fields: str) -> Any:
    return client.post(
        "/api/v1/jobs",
        data={"model": model, **fields},
        files={"file": ("rows.parquet", content, "application/octet-stream")},
    )


@pytest.mark.parametrize("recipe", RECIPES)
def test_a_job_scores_what_rest_answers(
    gateway_http: TestClient, reference_models: dict[str, str], recipe: str
) -> None:
    tag = reference_models[recipe]
    rows = golden_examples(tag)["inputs"]
    rest = gateway_http.post("/api/v1/predictions", json={"model": recipe, "inputs": rows})
    assert rest.status_code == 201, rest.text

    accepted = submit(
        gateway_http,
        recipe,
        parquet_bytes(rows, key=list(range(100, 100 + len(rows)))),
        id_column="key",
        log_rows="true",
    )
    assert accepted.status_code == 202, accepted.text
    job = wait_for(gateway_http, accepted.json()["data"]["id"])
    assert job["status"] == "succeeded", job
    download = gateway_http.get(job["result"])
    assert download.status_code == 200
    result = pq.read_table(io.BytesIO(download.content)).to_pylist()

    expected = [p["outputs"] for p in rest.json()["data"]["predictions"]]
    classes = output_classes(tag)
    assert [r["row"] for r in result] == list(range(len(rows)))
    assert [r["key"] for r in result] == list(range(100, 100 + len(rows)))
    for got, want in zip(result, expected, strict=True):
        assert got["error"] is None
        assert got["label"] == want["label"]
        assert got["score"] == want["score"]
        assert [got[f"probability_{c}"] for c in classes] == list(want["probabilities"].values())
        assert got["model_version"] == tag.split(":")[1]
        logged = gateway_http.get(f"/api/v1/predictions/{got['prediction_id']}").json()["data"]
        assert logged["outputs"] == want
        assert logged["role"] == "batch"


def csv_bytes(rows: list[dict[str, Any]]) -> bytes:
    names = list(rows[0])
    lines = [",".join(names)]
    for row in rows:
        cells = []
        for name in names:
            value = row[name]
            cells.append(
                ""
                if value is None
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
            )
        lines.append(",".join(cells))
    return ("\n".join(lines) + "\n").encode()


def test_a_csv_file_scores_as_rest_and_bad_rows_are_reported_per_row(
    gateway_http: TestClient, reference_models: dict[str, str]
) -> None:
    tag = reference_models["fraud-xgb"]
    rows = golden_examples(tag)["inputs"][:6]
    bad = [
        {**rows[0], "amount": None},
        {**rows[1], "merchant_category": "casino"},
        {**rows[2], "hour": 99},
    ]
    rest = gateway_http.post("/api/v1/predictions", json={"model": "fraud-xgb", "inputs": rows})
    accepted = gateway_http.post(
        "/api/v1/jobs",
        data={"model": "fraud-xgb"},
        files={"file": ("rows.csv", csv_bytes([*rows, *bad]), "text/csv")},
    )
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["data"]["format"] == "csv"
    job = wait_for(gateway_http, accepted.json()["data"]["id"])
    result = pq.read_table(io.BytesIO(gateway_http.get(job["result"]).content)).to_pylist()

    assert job["status"] == "succeeded", job
    assert job["progress"]["rows_done"] == 9
    assert job["progress"]["rows_failed"] == 3
    assert job["progress"]["rows_total"] == 9
    expected = [p["outputs"] for p in rest.json()["data"]["predictions"]]
    assert [r["score"] for r in result[:6]] == [e["score"] for e in expected]
    assert [r["label"] for r in result[:6]] == [e["label"] for e in expected]
    assert [(r["error"], r["label"], r["score"]) for r in result[6:]] == [
        ("missing:amount", None, None),
        ("unknown_category:merchant_category", None, None),
        ("out_of_range:hour", None, None),
    ]


@pytest.mark.parametrize(
    ("fields", "files", "code"),
    [
        ({"model": "fraud-xgb"}, None, "one_source"),
        ({"model": "fraud-xgb", "source": "/etc/passwd"}, "upload", "one_source"),
        ({"model": "fraud-xgb", "source": "/etc/passwd"}, None, "source_not_allowed"),
        ({"model": "fraud-xgb", "format": "parquet"}, "garbage", "unreadable"),
        ({"model": "fraud-xgb"}, "columns", "missing_column"),
        ({"model": "fraud-xgb", "id_column": "label"}, "upload", "reserved_name"),
        ({"model": "fraud-xgb", "id_column": "probability_1"}, "upload", "reserved_name"),
    ],
)
def test_a_file_that_cannot_be_scored_is_a_422_and_leaves_nothing(
    gateway_http: TestClient, fields: dict[str, str], files: str | None, code: str
) -> None:
    before = gateway_http.get("/api/v1/jobs").json()["meta"]["total"]
    content = {
        "upload": parquet_bytes([{"amount": 1.0}]),
        "garbage": b"not a parquet file at all",
        "columns": parquet_bytes([{"amount": 1.0, "hour": "noon"}]),
    }
    response = gateway_http.post(
        "/api/v1/jobs",
        data=fields,
        files={"file": ("f", content[files], "application/octet-stream")} if files else None,
    )

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert code in {problem["code"] for problem in error["details"]["errors"]}
    assert "Traceback" not in response.text
    assert "/jobs/" not in error["message"]
    assert gateway_http.get("/api/v1/jobs").json()["meta"]["total"] == before


def test_an_unknown_job_is_a_404_and_jobs_page(gateway_http: TestClient) -> None:
    missing = gateway_http.get("/api/v1/jobs/00000000-0000-4000-8000-000000000000")
    page = gateway_http.get("/api/v1/jobs", params={"limit": 1, "filter[status]": "succeeded"})

    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert page.status_code == 200
    assert len(page.json()["data"]) <= 1
    assert {"total", "pages", "page", "limit"} <= set(page.json()["meta"])


def test_a_csv_with_only_a_header_is_a_job_with_no_rows(gateway_http: TestClient) -> None:
    header = "amount,hour,merchant_category,distance_from_home_km,txn_count_1h,card_present,"
    header += "account_age_days,is_foreign\n"
    accepted = gateway_http.post(
        "/api/v1/jobs",
        data={"model": "fraud-xgb"},
        files={"file": ("empty.csv", header.encode(), "text/csv")},
    )
    assert accepted.status_code == 202, accepted.text
    job = wait_for(gateway_http, accepted.json()["data"]["id"])
    result = pq.read_table(io.BytesIO(gateway_http.get(job["result"]).content))

    assert job["status"] == "succeeded", job
    assert job["progress"]["rows_total"] == 0
    assert result.num_rows == 0
    assert result.column_names[:4] == ["row", "model_version", "label", "score"]
