"""The batch-job door enforces what every door does: 401 without a credential, 403 without
the scope, 404 for a job that is not the caller's (an admin sees every job), 422 for a file
that does not fit the model, 404 for a model that is not served."""

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.auth.settings import AuthSettings
from services.batch.settings import JobSettings
from tests.utils.accounts import new_account
from tests.utils.gateway import gateway_client
from tests.utils.served_models import golden_examples

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


def parquet(rows: list[dict[str, object]]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


async def test_jobs_need_a_credential_the_scope_and_ownership(
    auth_db: str,
    auth: AuthSettings,
    unique: str,
    reference_models: dict[str, str],
    tmp_path: Path,
) -> None:
    tag = reference_models["fraud-xgb"]
    content = parquet(golden_examples(tag)["inputs"])
    writer = await new_account(auth_db, auth, f"writer-{unique}", ["predictions:write"])
    other = await new_account(
        auth_db, auth, f"other-{unique}", ["predictions:write", "predictions:read"]
    )
    reader = await new_account(auth_db, auth, f"reader-{unique}", ["predictions:read"])
    admin = await new_account(auth_db, auth, f"admin-{unique}", ["admin"])
    settings = JobSettings(run=False, directory=tmp_path / "jobs")

    def upload(body: bytes = content) -> dict[str, tuple[str, bytes, str]]:
        return {"file": ("rows.parquet", body, "application/octet-stream")}

    async with gateway_client([tag], db_url=auth_db, auth=auth, jobs=settings) as (client, _):
        anonymous = await client.post("/api/v1/jobs", data={"model": "fraud-xgb"}, files=upload())
        anonymous_list = await client.get("/api/v1/jobs")
        read_only = await client.post(
            "/api/v1/jobs", data={"model": "fraud-xgb"}, files=upload(), headers=reader.headers
        )
        accepted = await client.post(
            "/api/v1/jobs", data={"model": "fraud-xgb"}, files=upload(), headers=other.headers
        )
        job_id = accepted.json()["data"]["id"]
        write_only_read = await client.get(f"/api/v1/jobs/{job_id}", headers=writer.headers)
        not_theirs = await client.get(f"/api/v1/jobs/{job_id}", headers=reader.headers)
        not_theirs_cancel = await client.delete(f"/api/v1/jobs/{job_id}", headers=writer.headers)
        owner = await client.get(f"/api/v1/jobs/{job_id}", headers=other.headers)
        readers_list = await client.get("/api/v1/jobs", headers=reader.headers)
        admins_list = await client.get("/api/v1/jobs", headers=admin.headers)
        unfit = await client.post(
            "/api/v1/jobs",
            data={"model": "fraud-xgb"},
            files=upload(parquet([{"amount": 1.0}])),
            headers=other.headers,
        )
        unknown_model = await client.post(
            "/api/v1/jobs", data={"model": "no-such-model"}, files=upload(), headers=other.headers
        )
        result_too_early = await client.get(f"/api/v1/jobs/{job_id}/result", headers=other.headers)

    assert anonymous.status_code == 401
    assert anonymous_list.status_code == 401
    assert read_only.status_code == 403
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["data"]["principal"] == other.username
    assert write_only_read.status_code == 403
    assert not_theirs.status_code == 404
    assert not_theirs_cancel.status_code == 404
    assert owner.status_code == 200
    assert owner.json()["data"]["status"] == "queued"
    assert readers_list.json()["meta"]["total"] == 0
    assert job_id in {job["id"] for job in admins_list.json()["data"]}
    assert unfit.status_code == 422
    problems = {(p["field"], p["code"]) for p in unfit.json()["error"]["details"]["errors"]}
    assert ("hour", "missing_column") in problems
    assert unknown_model.status_code == 404
    assert unknown_model.json()["error"]["code"] == "model_not_found"
    assert result_too_early.status_code == 409
    assert result_too_early.json()["error"]["code"] == "job_not_finished"
