"""A batch job over a large Parquet file against the runner's raw batched rows/s, in one run.

    .venv/bin/python -m bench.batch_job [--rows 1000000] [--model cancer-rf] [--postgres]

Baseline (the runner, raw): `RunnerCore.predict` (what a runner service runs) over PredictItems
of SERVING_MAX_BATCH_SIZE encoded rows, no HTTP, no validation, no files; the bare predictor on
one job chunk is printed too. The job: a real JobService and JobWorker (the gateway's) over the
same rows in a Parquet file referenced from an allow-listed directory: read by chunks, checked
and encoded by column, scored through the prediction service's runners, written as Parquet
parts and merged, progress committed per chunk; once with the rows also in the prediction
log (the default) and once without. Peak RSS is sampled every 20 ms during each job, against
the RSS before it: flat memory means the growth does not follow the file size.
"""

import argparse
import asyncio
import gc
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import psutil  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.parquet as pq

from services.runners.protocol import PredictItem


def build_file(path: Path, schema: Any, rows: list[dict[str, Any]], total: int) -> None:
    """`total` distinct rows (fixed seed): the golden rows cycled, every ranged float feature
    drawn uniformly inside its training range; row groups of 128k rows."""
    rng = np.random.default_rng(42)
    template = pa.Table.from_pylist(rows)
    block_rows = 131_072
    block = pa.concat_tables([template] * (block_rows // len(rows) + 1)).slice(0, block_rows)
    with pq.ParquetWriter(path, template.schema) as writer:
        written = 0
        while written < total:
            take = min(total - written, block_rows)
            table = block.slice(0, take)
            for spec in schema.features:
                if spec.dtype == "float" and spec.minimum is not None and spec.maximum is not None:
                    values = rng.uniform(spec.minimum, spec.maximum, take)
                    index = table.schema.get_field_index(spec.name)
                    table = table.set_column(index, spec.name, pa.array(values))
            writer.write_table(table)
            written += take


def raw_rows_per_s(core: Any, tag: str, matrix: np.ndarray, batch: int) -> float:
    items = [
        PredictItem(model=tag, rows=matrix[i : i + batch].tolist())
        for i in range(0, len(matrix), batch)
    ]
    core.predict(items[:2])
    started = time.perf_counter()
    for item in items:
        core.predict([item])
    return len(matrix) / (time.perf_counter() - started)


@contextmanager
def peak_rss() -> Iterator[dict[str, int]]:
    process = psutil.Process()
    seen = {"before": process.memory_info().rss, "peak": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen["peak"] = max(seen["peak"], process.memory_info().rss)
            stop.wait(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()


async def run_job(
    runtime: Any, path: Path, model: str, *, log_rows: bool
) -> tuple[float, dict[str, int], Any]:
    from services.batch.jobs import JobSubmission
    from services.batch.worker import JobWorker

    job = await runtime.jobs.submit(
        JobSubmission(
            model=model, caller=None, request_id="bench", source=str(path), log_rows=log_rows
        )
    )
    worker = JobWorker(runtime.jobs)
    claimed = await worker.claim()
    assert claimed == job.id
    with peak_rss() as memory:
        started = time.perf_counter()
        await worker.run(job.id)
        seconds = time.perf_counter() - started
    finished = await runtime.jobs.get(None, job.id)
    return seconds, memory, finished


async def main(args: argparse.Namespace, url: str) -> None:
    import bentoml

    from db.settings import DatabaseSettings
    from services.auth.settings import AuthSettings
    from services.batch.settings import JobSettings
    from services.catalog import ModelCatalog, ModelRef
    from services.deployments.settings import MonitoringSettings
    from services.gateway.wiring import build_runtime
    from services.ratelimit.settings import RateLimitSettings
    from services.redis_client import RedisSettings
    from services.runners.clients import LocalRunner
    from services.runners.core import RunnerCore
    from services.settings import ServingSettings

    stored = bentoml.models.get(args.model)
    framework = stored.info.labels["framework"]
    ref = ModelRef(stored.tag.name, str(stored.tag.version), framework)
    core = RunnerCore(framework, [stored])
    model = core.models[ref.tag]
    golden = model.metadata.golden_examples.inputs
    serving = ServingSettings(models=(ref.tag,))
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    path = work / "input.parquet"
    build_file(path, model.metadata.feature_schema, golden, args.rows)
    size_mb = path.stat().st_size / 1e6

    quarter = work / "quarter.parquet"
    build_file(quarter, model.metadata.feature_schema, golden, args.rows // 4)
    jobs = JobSettings(run=False, directory=work / "jobs", sources=(str(work),))
    # Baselines first, on a 65,536-row sample (the machine is quiet: no database work yet).
    sample = pa.Table.from_batches(
        [next(pq.ParquetFile(path).iter_batches(batch_size=65_536))]
    ).to_pylist()
    matrix = model.metadata.feature_schema.encode_rows(sample)
    raw = raw_rows_per_s(core, ref.tag, matrix, serving.max_batch_size)
    chunk = matrix[: jobs.chunk_rows]
    started = time.perf_counter()
    for _ in range(10):
        model.predictor.predict_proba(chunk)
    bare = 10 * len(chunk) / (time.perf_counter() - started)
    del sample, matrix, chunk
    gc.collect()
    runtime = await build_runtime(
        runners={framework: LocalRunner(core)},
        serving=serving,
        database=DatabaseSettings(url=url),
        catalog=ModelCatalog.from_store((ref,)),
        auth=AuthSettings(enabled=False),
        redis=RedisSettings(cache_enabled=False),
        limits=RateLimitSettings(enabled=False),
        monitoring=MonitoringSettings(drift_refresh_s=0),
        jobs=jobs,
    )
    # The RSS growth of a job on a quarter of the file and on all of it: flat memory means
    # the same growth whatever the file size.
    try:
        await run_job(runtime, quarter, args.model, log_rows=False)  # warm: imports, pools
        small = await run_job(runtime, quarter, args.model, log_rows=False)
        results = {}
        for log_rows in (False, True):
            results[log_rows] = await run_job(runtime, path, args.model, log_rows=log_rows)
    finally:
        await runtime.close()

    print(
        f"model {ref.tag}, {args.rows:,} rows, Parquet {size_mb:.1f} MB, "
        f"chunk {jobs.chunk_rows:,} rows, "
        f"database {'PostgreSQL' if args.postgres else 'SQLite'}, {os.cpu_count()} CPUs"
    )
    print(
        f"runner raw batched (RunnerCore.predict, {serving.max_batch_size}-row items): "
        f"{raw:,.0f} rows/s"
    )
    print(f"bare predictor on one {jobs.chunk_rows:,}-row chunk: {bare:,.0f} rows/s")
    seconds, memory, job = small
    print(
        f"job on a quarter of the file ({args.rows // 4:,} rows), not logged: "
        f"{args.rows // 4 / seconds:,.0f} rows/s; RSS {memory['before'] / 1e6:.0f} MB before, "
        f"peak +{(memory['peak'] - memory['before']) / 1e6:.0f} MB"
    )
    for log_rows, (seconds, memory, job) in results.items():
        rate = args.rows / seconds
        growth = (memory["peak"] - memory["before"]) / 1e6
        print(
            f"job, rows {'logged' if log_rows else 'not logged'}: {seconds:.1f} s, "
            f"{rate:,.0f} rows/s "
            f"= {rate / raw:.2f}x the runner raw, {rate / bare:.2f}x the bare predictor; "
            f"status {job.status}, rows {job.rows_done:,} "
            f"(failed {job.rows_failed}); RSS {memory['before'] / 1e6:.0f} MB before, "
            f"peak +{growth:.0f} MB"
        )


@contextmanager
def database(args: argparse.Namespace) -> Iterator[str]:
    """A new migrated database: on the local PostgreSQL (dropped afterwards), or a SQLite file."""
    from alembic import command

    from db.migrate import alembic_config

    if not args.postgres:
        url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='bench-batch-db-')}/jobs.sqlite3"
        command.upgrade(alembic_config(url), "head")
        yield url
        return
    name = f"bench_batch_{os.getpid()}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        command.upgrade(alembic_config(url), "head")
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(statement: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(host="127.0.0.1", user="postgres", database="test")
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--model", default="cancer-rf")
    parser.add_argument(
        "--postgres", action="store_true", help="the log on PostgreSQL (default SQLite)"
    )
    arguments = parser.parse_args()
    with database(arguments) as database_url:
        asyncio.run(main(arguments, database_url))
