"""A batch job survives its server: SIGTERM hands it back at a chunk boundary, SIGKILL leaves
it to a lease that expires; each time the next server resumes after the last committed chunk.
In the end every row is scored and logged exactly once, and the result is whole and in order.
"""

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.utils.databases import migrated_postgres
from tests.utils.served_models import distinct_rows
from tests.utils.server import RunningServer, serve_gateway
from tests.utils.service_app import serving_env

pytestmark = [pytest.mark.faults, pytest.mark.e2e]
ROWS, CHUNK = 40_000, 2_048
CHUNKS = -(-ROWS // CHUNK)


def job_state(url: str, job_id: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            row = await connection.fetchrow(
                "SELECT status, chunks_done, rows_done, holder, attempts, result_path "
                "FROM scoring_jobs WHERE id = $1",
                uuid.UUID(job_id),
            )
            logged = await connection.fetchval(
                "SELECT count(DISTINCT id) FROM predictions WHERE request_id = $1",
                f"job:{job_id}",
            )
        finally:
            await connection.close()
        return {**dict(row), "logged": logged}

    return asyncio.run(read())


def wait_for(url: str, job_id: str, condition: Any, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = job_state(url, job_id)
        if condition(state):
            return state
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never got there: {state}")


def crash(server: RunningServer) -> None:
    """SIGKILL the server and every worker at once: no shutdown hook runs."""
    processes = [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)
    psutil.wait_procs(processes, timeout=10)


@pytest.fixture
def setting(
    tmp_path: Path, reference_models: dict[str, str]
) -> Iterator[tuple[str, dict[str, str], Path]]:
    tag = reference_models["cancer-rf"]
    source = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(distinct_rows(tag, ROWS)), source, row_group_size=5_000)
    with migrated_postgres() as url:
        env = serving_env(
            [tag],
            DB_URL=url,
            SERVING_GATEWAY_WORKERS="1",
            JOBS_DIRECTORY=str(tmp_path / "jobs"),
            JOBS_SOURCES=str(tmp_path),
            JOBS_CHUNK_ROWS=str(CHUNK),
            JOBS_LEASE_S="5",
            JOBS_POLL_S="0.2",
        )
        yield url, env, source


def test_a_job_resumes_after_sigterm_and_after_a_crash(
    setting: tuple[str, dict[str, str], Path],
) -> None:
    url, env, source = setting
    with serve_gateway(env=env) as server:
        accepted = httpx.post(
            f"{server.base_url}/api/v1/jobs",
            data={"model": "cancer-rf", "source": str(source), "log_rows": "true"},
            timeout=30,
        )
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["data"]["id"]
        wait_for(url, job_id, lambda s: s["chunks_done"] >= 2)
    # serve_gateway's exit is a SIGTERM to the server: the worker hands the job back.
    handed_back = job_state(url, job_id)
    assert handed_back["status"] == "queued", handed_back
    assert handed_back["holder"] is None
    assert 2 <= handed_back["chunks_done"] < CHUNKS
    assert handed_back["logged"] == handed_back["rows_done"]

    with serve_gateway(env=env) as server:
        resumed = wait_for(
            url, job_id, lambda s: s["chunks_done"] >= handed_back["chunks_done"] + 2
        )
        assert resumed["status"] == "running"
        crash(server)
    crashed = job_state(url, job_id)
    assert crashed["status"] == "running"  # its holder is dead; the lease will tell
    assert crashed["chunks_done"] < CHUNKS, "the job finished before the crash: use more rows"

    with serve_gateway(env=env) as server:
        done = wait_for(url, job_id, lambda s: s["status"] in ("succeeded", "failed"))
        document = httpx.get(f"{server.base_url}/api/v1/jobs/{job_id}").json()["data"]
        result = pq.read_table(Path(done["result_path"]))

    assert done["status"] == "succeeded", document
    assert document["attempts"] == 2  # the clean hand-back returned its attempt
    assert done["rows_done"] == ROWS
    assert done["logged"] == ROWS  # every row logged once, none twice
    assert result.num_rows == ROWS
    assert result.column("row").to_pylist() == list(range(ROWS))
    assert result.column("error").null_count == ROWS
    assert sorted(result.column("prediction_id").to_pylist()) == sorted(
        set(result.column("prediction_id").to_pylist())
    )
    assert not os.path.exists(Path(done["result_path"]).parent / "parts") or not os.listdir(
        Path(done["result_path"]).parent / "parts"
    )
