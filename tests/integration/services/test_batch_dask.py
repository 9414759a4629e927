"""`python -m services.batch score` on a real Dask LocalCluster (two worker processes): a
dataset of several Parquet files scored with each worker loading the model through the
verifying loader, rows numbered across files, outputs equal to the service's for those rows."""

import asyncio
import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from starlette.testclient import TestClient

from services.batch.distributed import score_dataset
from services.batch.settings import JobSettings
from services.batch.worker import JobWorker
from services.errors import ValidationFailed
from tests.utils.databases import migrate, sqlite_url
from tests.utils.gateway import gateway_client
from tests.utils.served_models import distinct_rows, output_classes

pytestmark = [pytest.mark.integration, pytest.mark.slow]
FILES, PER_FILE = 4, 60


def dataset(directory: Path, rows: list[dict[str, Any]]) -> Path:
    directory.mkdir()
    for index in range(FILES):
        part = rows[index * PER_FILE : (index + 1) * PER_FILE]
        table = pa.Table.from_pylist(part).append_column(
            "customer", pa.array([f"c{index}-{i}" for i in range(len(part))])
        )
        pq.write_table(table, directory / f"part-{index}.parquet", row_group_size=25)
    return directory


def test_dask_scores_a_dataset_as_the_service_does(
    gateway_http: TestClient, reference_models: dict[str, str], tmp_path: Path
) -> None:
    tag = reference_models["fraud-xgb"]
    rows = distinct_rows(tag, FILES * PER_FILE)
    source = dataset(tmp_path / "in", rows)
    output = tmp_path / "out"

    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.batch",
            "score",
            "--model",
            tag,
            "--input",
            str(source),
            "--output",
            str(output),
            "--workers",
            "2",
            "--chunk-rows",
            "32",
            "--id-column",
            "customer",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    summary = json.loads(finished.stdout.strip().splitlines()[-1])
    result = pq.read_table(output).to_pylist()

    rest = gateway_http.post("/api/v1/predictions", json={"model": tag, "inputs": rows})
    assert rest.status_code == 201, rest.text
    expected = [p["outputs"] for p in rest.json()["data"]["predictions"]]
    classes = output_classes(tag)
    assert summary["rows"] == FILES * PER_FILE
    assert summary["files"] == FILES
    assert sorted(p.name for p in output.iterdir()) == [f"part-{i:05d}.parquet" for i in range(4)]
    assert [r["row"] for r in result] == list(range(FILES * PER_FILE))
    assert [r["customer"] for r in result[:2]] == ["c0-0", "c0-1"]
    assert [
        {
            "label": r["label"],
            "score": r["score"],
            "probabilities": {str(c): r[f"probability_{c}"] for c in classes},
            "out_of_range": [],
        }
        for r in result
    ] == expected
    assert "[4/4]" in finished.stderr
    # Every file was scored in a worker process, which verified the model before scoring.
    reports = [line for line in finished.stderr.splitlines() if "worker pid" in line]
    assert len(reports) == FILES


def test_a_dataset_whose_columns_do_not_fit_fails_before_any_output(
    reference_models: dict[str, str], tmp_path: Path
) -> None:
    from dask.distributed import Client, LocalCluster

    source = tmp_path / "in"
    source.mkdir()
    pq.write_table(pa.table({"amount": [1.0]}), source / "part-0.parquet")

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False) as cluster,
        Client(cluster) as client,
        pytest.raises(ValidationFailed) as refused,
    ):
        score_dataset(
            client,
            source=str(source),
            output=str(tmp_path / "out"),
            tag=reference_models["fraud-xgb"],
        )

    assert any(p["code"] == "missing_column" for p in refused.value.details["errors"])
    assert not list((tmp_path / "out").glob("*.parquet"))


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A real two-process Dask cluster for the jobs that run on Dask."""
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        yield cluster.scheduler_address


@pytest.mark.asyncio
async def test_a_job_runs_on_dask_when_a_scheduler_is_configured(
    scheduler: str, reference_models: dict[str, str], tmp_path: Path
) -> None:
    tag = reference_models["cancer-rf"]
    rows = distinct_rows(tag, 500)
    source = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(rows), source, row_group_size=50)
    common = {"directory": tmp_path / "jobs", "sources": (str(tmp_path),), "chunk_rows": 120}
    results = {}
    for engine, settings in (
        ("dask", JobSettings(run=False, dask_scheduler=scheduler, **common)),
        ("local", JobSettings(run=False, **common)),
    ):
        database = sqlite_url(tmp_path / f"{engine}.sqlite3")
        await asyncio.to_thread(migrate, database)
        async with gateway_client([tag], db_url=database, jobs=settings) as (client, runtime):
            accepted = await client.post(
                "/api/v1/jobs", data={"model": "cancer-rf", "source": str(source)}
            )
            assert accepted.status_code == 202, accepted.text
            job_id = uuid.UUID(accepted.json()["data"]["id"])
            worker = JobWorker(runtime.jobs)  # type: ignore[arg-type]
            assert await worker.claim() == job_id
            await worker.run(job_id)
            job = (await client.get(f"/api/v1/jobs/{job_id}")).json()["data"]
            result = await client.get(job["result"])
            refused = await client.post(
                "/api/v1/jobs",
                data={"model": "cancer-rf", "source": str(source), "log_rows": "true"},
            )
        assert job["status"] == "succeeded", job
        results[engine] = (job, refused, pq.read_table(io.BytesIO(result.content)).to_pylist())

    dask_job, dask_refused, on_dask = results["dask"]
    _, local_refused, local = results["local"]
    assert dask_refused.status_code == 422
    assert dask_refused.json()["error"]["details"]["errors"][0]["code"] == "not_on_dask"
    assert local_refused.status_code == 202
    # 500 rows in row groups of 50, tasks of whole groups and >= 120 rows: 150, 150, 150, 50
    assert dask_job["progress"]["chunks_done"] == 4
    assert dask_job["progress"]["rows_done"] == 500
    assert on_dask == local
