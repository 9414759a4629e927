"""The worker inside each gateway process that scores queued jobs, one chunk at a time.

Per chunk: read (pyarrow) -> check and encode (by column) -> the prediction service's runners
-> a Parquet part -> one transaction that counts the chunk, renews the lease and inserts its
rows into the prediction log. The part is written before the commit: after a stop, the chunk is
either committed (skipped on resume) or scored again and its part replaced, never logged twice.
"""

import asyncio
import contextlib
import functools
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from db.models import ScoringJob
from db.repositories import jobs as repository
from db.repositories.predictions import copy_predictions
from services.artifact.digests import file_sha256
from services.batch.columns import EncodedChunk, encode_chunk
from services.batch.files import InputFile, chunks, read_schema, row_group_tasks
from services.batch.jobs import JobService
from services.batch.results import (
    merge_parts,
    part_path,
    result_schema,
    score_result,
    write_part,
)
from services.catalog import ServedModel
from services.errors import AppError, DatabaseUnavailable, InferenceTimeout, ModelNotLoaded
from services.observability.metrics import BATCH_CHUNK_SECONDS, BATCH_JOBS, BATCH_ROWS
from services.persistence import is_database_failure
from services.pipeline.postprocess import prediction_outputs

logger = logging.getLogger("services.batch")
BATCH_ROLE = "batch"
TRANSIENT = (ModelNotLoaded, InferenceTimeout, DatabaseUnavailable, TimeoutError)
MAX_BACKOFF_S = 30.0


class _Lost(Exception):
    """The job stopped being this worker's (cancelled, or taken over after its lease expired)."""


@dataclass(frozen=True)
class _Plan:
    job: ScoringJob
    model: ServedModel
    source: InputFile
    schema: pa.Schema
    columns: list[str]


class JobWorker:
    """Claims jobs from the job table and scores them until told to stop."""

    def __init__(self, jobs: JobService, *, holder: str | None = None) -> None:
        self.jobs = jobs
        self.settings = jobs.settings
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.settings.lease_s)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def close(self) -> None:
        """Stop after the chunk in progress; a job in hand goes back to the queue."""
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                job_id = await self.claim()
            except Exception as exc:
                logger.warning("could not look for batch jobs: %r", exc)
                job_id = None
            if job_id is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=self.settings.poll_s)
                continue
            try:
                await self.run(job_id)
            except Exception as exc:  # the job stays claimed; its lease expires and it resumes
                logger.error("batch job %s: could not record its outcome: %r", job_id, exc)

    async def claim(self) -> uuid.UUID | None:
        async with self.jobs.store.sessions() as session:
            return await repository.claim_job(
                session=session, holder=self.holder, now=self.jobs.clock(), lease=self.lease
            )

    async def run(self, job_id: uuid.UUID) -> None:
        """Score a claimed job to its end, or hand it back (stopping); the lease is renewed in
        the background meanwhile, so a slow chunk or merge never looks like a dead worker."""
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(job_id))
        try:
            await self._run(job_id)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _run(self, job_id: uuid.UUID) -> None:
        try:
            plan = await self._plan(job_id)
            if plan is not None:
                await self._score(plan)
        except _Lost:
            await self._lost(job_id)
        except Exception as exc:
            if _transient(exc) and self._stopping.is_set():
                await self._release(job_id)
                return
            logger.exception("batch job %s failed", job_id)
            # An upload's path is the server's business; a referenced source is the caller's own.
            paths = (str(self.jobs.directory(job_id)),)
            reason = _reason(exc, paths)
            if _transient(exc):
                reason = f"unavailable for {self.settings.retry_for_s:g} s: {reason}"
            await self._finish(job_id, "failed", error=reason)

    async def _heartbeat(self, job_id: uuid.UUID) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_s / 3)
            try:
                async with self.jobs.store.sessions() as session:
                    held = await repository.renew_lease(
                        session=session,
                        job_id=job_id,
                        holder=self.holder,
                        now=self.jobs.clock(),
                        lease=self.lease,
                    )
            except Exception as exc:  # the next chunk's commit retries, or finds it lost
                logger.warning("batch job %s: lease not renewed: %r", job_id, exc)
                continue
            if not held:  # cancelled or taken over: the next commit finds out
                return

    async def _retrying(self, job_id: uuid.UUID, step: Callable[[], Awaitable[None]]) -> None:
        """`step()`, retried in place while the runner or the database is unavailable (the
        lease stays renewed, so the job keeps its worker), for up to JOBS_RETRY_FOR_S."""
        deadline = time.monotonic() + self.settings.retry_for_s
        delay = 1.0
        while True:
            try:
                await step()
                return
            except _Lost:
                raise
            except Exception as exc:
                if not _transient(exc) or self._stopping.is_set():
                    raise
                if time.monotonic() + delay > deadline:
                    raise
                logger.warning(
                    "batch job %s waits %.0f s for an unavailable dependency: %r",
                    job_id,
                    delay,
                    exc,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
                delay = min(delay * 2, MAX_BACKOFF_S)

    async def _plan(self, job_id: uuid.UUID) -> _Plan | None:
        async with self.jobs.store.sessions() as session:
            job = await repository.get_job(session=session, job_id=job_id)
        if job is None or job.holder != self.holder:
            return None
        if job.attempts > self.settings.max_attempts:
            await self._finish(
                job_id,
                "failed",
                error=f"gave up after {job.attempts - 1} attempts: the worker scoring it stopped "
                "each time",
            )
            return None
        model = self.jobs.predictions.catalog.get(job.model_name, job.model_version)
        if model is None:
            await self._finish(
                job_id,
                "failed",
                error=f"{job.model_name}:{job.model_version} is no longer served here",
            )
            return None
        source = InputFile.at(job.input_path, job.input_format)  # type: ignore[arg-type]
        feature_schema = model.metadata.feature_schema
        columns_in_file, _ = await asyncio.to_thread(
            read_schema, source, feature_schema, id_column=job.id_column
        )
        id_type = columns_in_file.field(job.id_column).type if job.id_column else None
        schema = result_schema(model.metadata.output_schema.classes, id_type, job.id_column or "id")
        wanted = [*feature_schema.names, *([job.id_column] if job.id_column else [])]
        return _Plan(job=job, model=model, source=source, schema=schema, columns=wanted)

    async def _score(self, plan: _Plan) -> None:
        if self.settings.dask_scheduler:
            await self._score_on_dask(plan, self.settings.dask_scheduler)
            return
        job, model = plan.job, plan.model
        directory = self.jobs.directory(job.id)
        reader = chunks(
            plan.source,
            model.metadata.feature_schema,
            chunk_rows=job.chunk_rows,
            columns=plan.columns,
            start=job.chunks_done,
        )
        chunk = job.chunks_done
        policy = self.jobs.predictions.settings.range_policy
        features = model.metadata.feature_schema

        def prepare() -> tuple[pa.RecordBatch, EncodedChunk] | None:
            batch = next(reader, None)
            return None if batch is None else (batch, encode_chunk(batch, features, policy=policy))

        # The next chunk is read and checked in a thread while this one is scored and stored.
        upcoming = asyncio.ensure_future(asyncio.to_thread(prepare))
        try:
            while True:
                prepared = await upcoming
                if prepared is None:
                    break
                if self._stopping.is_set():
                    await self._release(job.id)
                    return
                upcoming = asyncio.ensure_future(asyncio.to_thread(prepare))
                await self._retrying(
                    job.id, functools.partial(self._chunk, plan, directory, chunk, *prepared)
                )
                chunk += 1
        finally:
            with contextlib.suppress(BaseException):
                await upcoming  # the thread holds the reader: let it finish before closing
            reader.close()
        path = await asyncio.to_thread(merge_parts, directory, chunk, plan.schema)
        await self._finish(job.id, "succeeded", result_path=str(path))
        logger.info("batch job %s succeeded: %d chunks", job.id, chunk)

    async def _score_on_dask(self, plan: _Plan, scheduler: str) -> None:
        """The job's Parquet file as tasks of whole row groups on a Dask cluster, each scored
        by `score_file` (the Dask command's engine), committed in file order as the job's
        chunks: a resumed job submits only the tasks after its last committed one."""
        from services.batch.distributed import score_file

        job, model = plan.job, plan.model
        directory = self.jobs.directory(job.id)
        tasks = await asyncio.to_thread(row_group_tasks, plan.source, job.chunk_rows)
        score = functools.partial(
            score_file,
            tag=model.ref.tag,
            policy=self.jobs.predictions.settings.range_policy,
            chunk_rows=job.chunk_rows,
            id_column=job.id_column,
        )

        def submit() -> tuple[Any, list[Any]]:
            from dask.distributed import Client

            client = Client(scheduler)  # type: ignore[no-untyped-call]
            futures = [
                client.submit(
                    score,
                    job.input_path,
                    str(part_path(directory, index)),
                    first_row,
                    row_groups=groups,
                    pure=False,
                )
                for index, (first_row, groups) in enumerate(tasks)
                if index >= job.chunks_done
            ]
            return client, futures

        (directory / "parts").mkdir(parents=True, exist_ok=True)
        client, futures = await asyncio.to_thread(submit)
        try:
            for index, future in enumerate(futures, start=job.chunks_done):
                if self._stopping.is_set():
                    await self._release(job.id)
                    return
                started = time.perf_counter()
                report = await asyncio.to_thread(future.result)
                digest = await asyncio.to_thread(file_sha256, part_path(directory, index))
                await self._commit(
                    job,
                    model,
                    chunk=index,
                    first_row=tasks[index][0],
                    rows=report.rows,
                    failed=report.failed,
                    digest=digest,
                    started=started,
                    log=[],
                )
        finally:
            await asyncio.to_thread(client.close)
        path = await asyncio.to_thread(merge_parts, directory, len(tasks), plan.schema)
        await self._finish(job.id, "succeeded", result_path=str(path))
        logger.info("batch job %s succeeded on Dask: %d tasks", job.id, len(tasks))

    async def _chunk(
        self,
        plan: _Plan,
        directory: Path,
        chunk: int,
        batch: pa.RecordBatch,
        encoded: EncodedChunk,
    ) -> None:
        job, model = plan.job, plan.model
        started = time.perf_counter()
        first_row = chunk * job.chunk_rows
        classes = model.metadata.output_schema.classes
        if len(encoded.matrix):
            probabilities = await self.jobs.predictions.score_block(
                model, encoded.matrix, timeout_s=self.settings.chunk_timeout_s
            )
        else:
            probabilities = np.zeros((0, len(classes)))
        scored_chunk = score_result(
            schema=plan.schema,
            first_row=first_row,
            classes=classes,
            version=model.ref.version,
            encoded=encoded,
            probabilities=probabilities,
            ids=batch.column(job.id_column) if job.id_column else None,
            with_prediction_ids=job.log_rows,
        )
        ok, ids = scored_chunk.ok, scored_chunk.prediction_ids
        digest = await asyncio.to_thread(write_part, directory, chunk, scored_chunk.batch)
        latency_ms = (time.perf_counter() - started) * 1000
        rows = (
            _log_rows(
                job, model, batch, encoded, probabilities, ok, ids, latency_ms, self.jobs.clock()
            )
            if ids is not None
            else []
        )
        scored = int(ok.sum())
        await self._commit(
            job,
            model,
            chunk=chunk,
            first_row=first_row,
            rows=batch.num_rows,
            failed=batch.num_rows - scored,
            digest=digest,
            started=started,
            log=rows,
        )

    async def _commit(
        self,
        job: ScoringJob,
        model: ServedModel,
        *,
        chunk: int,
        first_row: int,
        rows: int,
        failed: int,
        digest: str,
        started: float,
        log: list[dict[str, Any]],
    ) -> None:
        """Count the chunk, renew the lease, add its ledger entry and its logged rows: one
        transaction, or _Lost when the job is no longer this worker's."""
        now = self.jobs.clock()
        async with self.jobs.store.sessions() as session, session.begin():
            advanced = await repository.record_chunk(
                session=session,
                job_id=job.id,
                holder=self.holder,
                chunk=chunk,
                rows=rows,
                failed=failed,
                now=now,
                lease=self.lease,
            )
            if not advanced:
                raise _Lost
            await repository.add_chunk(
                session=session,
                values={
                    "job_id": job.id,
                    "chunk": chunk,
                    "first_row": first_row,
                    "rows": rows,
                    "failed": failed,
                    "model_version": model.ref.version,
                    "part_sha256": digest,
                    "seconds": time.perf_counter() - started,
                    "holder": self.holder,
                    "committed_at": now,
                },
            )
            await copy_predictions(session=session, rows=log)
        BATCH_ROWS.labels(model=model.ref.name, outcome="scored").inc(rows - failed)
        BATCH_ROWS.labels(model=model.ref.name, outcome="failed").inc(failed)
        BATCH_CHUNK_SECONDS.labels(model=model.ref.name).observe(time.perf_counter() - started)

    async def _lost(self, job_id: uuid.UUID) -> None:
        async with self.jobs.store.sessions() as session:
            job = await repository.get_job(session=session, job_id=job_id)
        if job is None or job.status == "cancelled":
            shutil.rmtree(self.jobs.directory(job_id), ignore_errors=True)
            logger.info("batch job %s cancelled", job_id)
            BATCH_JOBS.labels(status="cancelled").inc()
        else:
            logger.warning("batch job %s was taken over (now %s)", job_id, job.status)
            if job.status == "succeeded":  # the part this worker wrote late is a stray copy
                shutil.rmtree(self.jobs.directory(job_id) / "parts", ignore_errors=True)

    async def _release(self, job_id: uuid.UUID) -> None:
        try:
            async with self.jobs.store.sessions() as session:
                released = await repository.release_job(
                    session=session, job_id=job_id, holder=self.holder, now=self.jobs.clock()
                )
        except Exception as exc:  # its lease expires, and another worker takes it over
            logger.warning("could not hand batch job %s back: %r", job_id, exc)
            return
        if released:
            BATCH_JOBS.labels(status="released").inc()

    async def _finish(
        self,
        job_id: uuid.UUID,
        status: repository.JobStatus,
        *,
        result_path: str | None = None,
        error: str | None = None,
    ) -> None:
        async with self.jobs.store.sessions() as session:
            ended = await repository.finish_job(
                session=session,
                job_id=job_id,
                holder=self.holder,
                status=status,
                now=self.jobs.clock(),
                result_path=result_path,
                error=error,
            )
        if ended:
            BATCH_JOBS.labels(status=status).inc()
        else:  # cancelled meanwhile (nobody else cleans up after it) or taken over
            await self._lost(job_id)
            return
        if status == "failed":  # the parts of a failed job are of no use; the input stays
            shutil.rmtree(self.jobs.directory(job_id) / "parts", ignore_errors=True)


def _log_rows(
    job: ScoringJob,
    model: ServedModel,
    batch: pa.RecordBatch,
    encoded: EncodedChunk,
    probabilities: npt.NDArray[np.float64],
    ok: npt.NDArray[np.bool_],
    ids: list[uuid.UUID | None],
    latency_ms: float,
    now: datetime,
) -> list[dict[str, Any]]:
    """The chunk's scored rows for the prediction log, their outputs shaped by the REST path's
    own `prediction_outputs`."""
    features = [name for name in model.metadata.feature_schema.names if name in batch.schema.names]
    inputs = batch.select(features).filter(pa.array(ok)).to_pylist()
    # `probabilities` has a row per row that reached the model; keep those that were scored.
    outputs = prediction_outputs(
        probabilities[ok[encoded.ok]].tolist(), model.metadata.output_schema.classes
    )
    flagged = [encoded.flagged[index] for index in np.flatnonzero(ok)]
    logged = [prediction_id for prediction_id in ids if prediction_id is not None]
    request_id = f"job:{job.id}"
    return [
        {
            "id": prediction_id,
            "request_id": request_id,
            "model_name": model.ref.name,
            "model_version": model.ref.version,
            "inputs": row,
            "outputs": {**output, "out_of_range": flags},
            "latency_ms": latency_ms,
            "principal": job.principal,
            "created_at": now,
            "role": BATCH_ROLE,
        }
        for row, output, flags, prediction_id in zip(inputs, outputs, flagged, logged, strict=True)
    ]


def _transient(exc: BaseException) -> bool:
    """The runner or the database is unavailable right now: worth waiting for."""
    return isinstance(exc, TRANSIENT) or is_database_failure(exc)


def _reason(exc: BaseException, paths: tuple[str, ...] = ()) -> str:
    """What a job's `error` says: an AppError's message; for anything else its kind and first
    line with the server's paths left out, never a stack trace (the log has it)."""
    if isinstance(exc, AppError):
        return exc.message
    first = (str(exc).splitlines() or [""])[0]
    for path in sorted(paths, key=len, reverse=True):
        first = first.replace(path, "<file>")
    first = first[:300]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
