"""The job worker against real PostgreSQL: resume after a stop, take-over after a crash (and
the crashed worker's late chunk refused), cancel while running, attempts used up, a version
gone. Rows logged once whatever happens; the result equals an uninterrupted run."""

import asyncio
import io
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import pytest_asyncio

from db.repositories import jobs as repository
from services.batch.jobs import JobSubmission
from services.batch.settings import JobSettings
from services.batch.worker import JobWorker
from services.errors import ModelNotLoaded
from services.gateway.runtime import GatewayRuntime
from tests.utils.databases import migrated_postgres
from tests.utils.gateway import gateway_client
from tests.utils.served_models import distinct_rows

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]
CHUNK = 64
ROWS = 300  # 5 chunks, the last one short


@pytest.fixture(scope="module")
def jobs_db() -> Iterator[str]:
    with migrated_postgres() as url:
        yield url


@pytest_asyncio.fixture
async def runtime(
    jobs_db: str, reference_models: dict[str, str], tmp_path: Path
) -> AsyncIterator[GatewayRuntime]:
    settings = JobSettings(
        run=False, directory=tmp_path / "jobs", sources=(str(tmp_path),), chunk_rows=CHUNK
    )
    async with gateway_client([reference_models["cancer-rf"]], db_url=jobs_db, jobs=settings) as (
        _,
        built,
    ):
        yield built


def input_file(tmp_path: Path, tag: str) -> str:
    path = tmp_path / f"rows-{uuid.uuid4().hex[:6]}.parquet"
    pq.write_table(pa.Table.from_pylist(distinct_rows(tag, ROWS)), path, row_group_size=50)
    return str(path)


async def submit(runtime: GatewayRuntime, source: str, *, log_rows: bool = True) -> uuid.UUID:
    assert runtime.jobs is not None
    job = await runtime.jobs.submit(
        JobSubmission(
            model="cancer-rf", caller=None, request_id="test", source=source, log_rows=log_rows
        )
    )
    return job.id


class Pausing(JobWorker):
    """A worker that stops (`stop_after`) or blocks (`block_after`) after N chunks."""

    def __init__(self, *args: Any, stop_after: int = 0, block_after: int = 0, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.stop_after, self.block_after = stop_after, block_after
        self.chunks = 0
        self.blocked = asyncio.Event()
        self.go_on = asyncio.Event()

    async def _chunk(self, *args: Any) -> None:
        if self.block_after and self.chunks == self.block_after:
            self.blocked.set()
            await self.go_on.wait()
        await super()._chunk(*args)
        self.chunks += 1
        if self.stop_after and self.chunks == self.stop_after:
            self._stopping.set()


async def logged(url: str, job_id: uuid.UUID) -> list[str]:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await connection.fetch(
            "SELECT id FROM predictions WHERE request_id = $1", f"job:{job_id}"
        )
    finally:
        await connection.close()
    return [str(row["id"]) for row in rows]


async def job_row(runtime: GatewayRuntime, job_id: uuid.UUID) -> Any:
    assert runtime.jobs is not None
    return await runtime.jobs.get(None, job_id)


def result_rows(path: str) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist()


async def uninterrupted(runtime: GatewayRuntime, source: str) -> list[dict[str, Any]]:
    job_id = await submit(runtime, source, log_rows=False)
    worker = JobWorker(runtime.jobs)  # type: ignore[arg-type]
    assert await worker.claim() == job_id
    await worker.run(job_id)
    job = await job_row(runtime, job_id)
    assert job.status == "succeeded"
    return result_rows(job.result_path)


def without_ids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "prediction_id"} for row in rows]


async def test_a_stopped_worker_hands_the_job_back_and_another_resumes_it(
    runtime: GatewayRuntime, jobs_db: str, reference_models: dict[str, str], tmp_path: Path
) -> None:
    source = input_file(tmp_path, reference_models["cancer-rf"])
    job_id = await submit(runtime, source)
    first = Pausing(runtime.jobs, stop_after=2)  # type: ignore[arg-type]
    assert await first.claim() == job_id
    await first.run(job_id)

    paused = await job_row(runtime, job_id)
    assert (paused.status, paused.chunks_done, paused.rows_done, paused.holder) == (
        "queued",
        2,
        2 * CHUNK,
        None,
    )
    second = JobWorker(runtime.jobs)  # type: ignore[arg-type]
    assert await second.claim() == job_id
    await second.run(job_id)

    done = await job_row(runtime, job_id)
    assert (done.status, done.rows_done, done.rows_total, done.attempts) == (
        "succeeded",
        ROWS,
        ROWS,
        1,
    )
    rows = result_rows(done.result_path)
    assert without_ids(rows) == without_ids(await uninterrupted(runtime, source))
    assert sorted(await logged(jobs_db, job_id)) == sorted(r["prediction_id"] for r in rows)
    async with runtime.store.sessions() as session:  # type: ignore[union-attr]
        ledger = await repository.list_chunks(session=session, job_id=job_id)
    assert [(c.chunk, c.first_row, c.rows) for c in ledger] == [
        (i, i * CHUNK, min(CHUNK, ROWS - i * CHUNK)) for i in range(5)
    ]
    assert {c.holder for c in ledger} == {first.holder, second.holder}


async def test_a_crashed_workers_job_is_taken_over_and_its_late_chunk_refused(
    runtime: GatewayRuntime, jobs_db: str, reference_models: dict[str, str], tmp_path: Path
) -> None:
    assert runtime.jobs is not None
    source = input_file(tmp_path, reference_models["cancer-rf"])
    job_id = await submit(runtime, source)
    crashed = Pausing(runtime.jobs, block_after=1)
    assert await crashed.claim() == job_id
    stuck = asyncio.create_task(crashed.run(job_id))
    await crashed.blocked.wait()  # one chunk committed, then it hangs (as a dead process)

    later = datetime.now(UTC) + timedelta(seconds=runtime.jobs.settings.lease_s + 1)
    runtime.jobs.clock = lambda: later
    rescuer = JobWorker(runtime.jobs)
    assert await rescuer.claim() == job_id
    await rescuer.run(job_id)
    crashed.go_on.set()
    await stuck  # its next commit finds the job is no longer its own

    done = await job_row(runtime, job_id)
    assert (done.status, done.attempts, done.rows_done) == ("succeeded", 2, ROWS)
    rows = result_rows(done.result_path)
    ids = await logged(jobs_db, job_id)
    assert len(ids) == ROWS
    assert sorted(ids) == sorted(r["prediction_id"] for r in rows)
    assert without_ids(rows) == without_ids(await uninterrupted(runtime, source))


async def test_cancelling_a_running_job_stops_it_at_the_next_chunk(
    runtime: GatewayRuntime, jobs_db: str, reference_models: dict[str, str], tmp_path: Path
) -> None:
    assert runtime.jobs is not None
    job_id = await submit(runtime, input_file(tmp_path, reference_models["cancer-rf"]))
    worker = Pausing(runtime.jobs, block_after=2)
    assert await worker.claim() == job_id
    running = asyncio.create_task(worker.run(job_id))
    await worker.blocked.wait()

    cancelled = await runtime.jobs.cancel(None, job_id)
    worker.go_on.set()
    await running

    assert cancelled is not None
    assert cancelled.status == "cancelled"
    final = await job_row(runtime, job_id)
    assert (final.status, final.chunks_done) == ("cancelled", 2)
    assert len(await logged(jobs_db, job_id)) == 2 * CHUNK  # the chunks committed before
    assert not runtime.jobs.directory(job_id).exists()


async def test_a_job_that_keeps_losing_its_worker_fails_after_its_attempts(
    runtime: GatewayRuntime, reference_models: dict[str, str], tmp_path: Path
) -> None:
    assert runtime.jobs is not None
    job_id = await submit(runtime, input_file(tmp_path, reference_models["cancer-rf"]))
    start = datetime.now(UTC)
    worker = JobWorker(runtime.jobs)
    for attempt in range(runtime.jobs.settings.max_attempts + 1):
        runtime.jobs.clock = lambda attempt=attempt: start + attempt * timedelta(hours=1)
        assert await worker.claim() == job_id
    await worker.run(job_id)

    failed = await job_row(runtime, job_id)
    assert failed.status == "failed"
    assert failed.error.startswith("gave up after 3 attempts")


async def test_a_job_whose_version_is_no_longer_served_fails_with_the_reason(
    runtime: GatewayRuntime, reference_models: dict[str, str], tmp_path: Path
) -> None:
    assert runtime.jobs is not None
    assert runtime.store is not None
    job_id = await submit(runtime, input_file(tmp_path, reference_models["cancer-rf"]))
    async with runtime.store.sessions() as session, session.begin():
        job = await repository.get_job(session=session, job_id=job_id)
        assert job is not None
        job.model_version = "retired"
    worker = JobWorker(runtime.jobs)
    assert await worker.claim() == job_id
    await worker.run(job_id)

    failed = await job_row(runtime, job_id)
    assert (failed.status, failed.error) == (
        "failed",
        "cancer-rf:retired is no longer served here",
    )


async def test_the_result_downloads_once_succeeded_and_deleting_removes_it(
    jobs_db: str, reference_models: dict[str, str], tmp_path: Path
) -> None:
    settings = JobSettings(
        run=True, poll_s=0.05, directory=tmp_path / "jobs", sources=(str(tmp_path),)
    )
    source = input_file(tmp_path, reference_models["cancer-rf"])
    async with gateway_client([reference_models["cancer-rf"]], db_url=jobs_db, jobs=settings) as (
        client,
        _,
    ):
        accepted = await client.post("/api/v1/jobs", data={"model": "cancer-rf", "source": source})
        assert accepted.status_code == 202, accepted.text
        location = accepted.headers["location"]
        for _ in range(200):
            job = (await client.get(location)).json()["data"]
            if job["status"] == "succeeded":
                break
            await asyncio.sleep(0.05)
        result = await client.get(job["result"])
        deleted = await client.delete(location)
        gone = await client.get(location)

    assert job["progress"] == {
        "rows_total": ROWS,
        "rows_done": ROWS,
        "rows_failed": 0,
        "chunks_done": 1,
        "fraction": 1.0,
    }
    assert result.status_code == 200
    assert result.headers["content-type"] == "application/vnd.apache.parquet"
    assert pq.read_table(io.BytesIO(result.content)).num_rows == ROWS
    assert deleted.status_code == 204
    assert gone.status_code == 404
    assert not (tmp_path / "jobs" / job["id"]).exists()


class Outage:
    """The prediction service's block scoring, unavailable for the first `failures` calls
    (as while a runner restarts), then the real thing."""

    def __init__(self, runtime: GatewayRuntime, failures: int) -> None:
        self.real = runtime.predictions.score_block
        self.failures = failures
        self.calls = 0

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise ModelNotLoaded("the sklearn runner is not available")
        return await self.real(*args, **kwargs)


async def test_a_job_waits_for_an_unavailable_runner_and_then_finishes(
    runtime: GatewayRuntime,
    reference_models: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert runtime.jobs is not None
    outage = Outage(runtime, failures=2)
    monkeypatch.setattr(runtime.predictions, "score_block", outage)
    job_id = await submit(runtime, input_file(tmp_path, reference_models["cancer-rf"]))
    worker = JobWorker(runtime.jobs)
    assert await worker.claim() == job_id
    await worker.run(job_id)  # two waits: 1 s, then 2 s

    done = await job_row(runtime, job_id)
    assert (done.status, done.rows_done, done.attempts) == ("succeeded", ROWS, 1)
    assert outage.calls == 2 + 5


async def test_a_job_fails_with_the_reason_once_the_outage_outlasts_its_patience(
    runtime: GatewayRuntime,
    reference_models: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert runtime.jobs is not None
    monkeypatch.setattr(runtime.predictions, "score_block", Outage(runtime, failures=10**6))
    monkeypatch.setattr(runtime.jobs.settings, "retry_for_s", 2.0)
    job_id = await submit(runtime, input_file(tmp_path, reference_models["cancer-rf"]))
    worker = JobWorker(runtime.jobs)
    assert await worker.claim() == job_id
    await worker.run(job_id)

    failed = await job_row(runtime, job_id)
    assert failed.status == "failed"
    assert failed.error == "unavailable for 2 s: the sklearn runner is not available"
    assert failed.chunks_done == 0
