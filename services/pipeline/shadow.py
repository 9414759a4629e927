"""Shadow traffic: each shadow version gets a copy of a production request once its response
has been sent; its outputs go to the prediction log as `role=shadow` rows linked to the primary
prediction (`shadow_of`), and are never returned.

The work is bounded per worker: a queue of DEPLOYMENT_SHADOW_QUEUE jobs and
DEPLOYMENT_SHADOW_IN_FLIGHT jobs running. When the queue is full the new job is dropped and
counted (`shadow_jobs_total{outcome="dropped"}`): overload sheds shadow work, never a primary
request. Shadow rows are committed in transactions of their own, so a failing shadow write (say,
its primary was deleted meanwhile) never fails a primary prediction's commit.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories.predictions import add_predictions
from services.batching import MicroBatcher
from services.catalog import ServedModel
from services.http.context import after_response
from services.observability.metrics import DEPLOYMENT_REQUESTS, SHADOW_JOBS
from services.pipeline.inference import Inference
from services.pipeline.postprocess import prediction_outputs
from services.pipeline.validation import validate_rows

logger = logging.getLogger("services.shadow")
Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class ShadowJob:
    """A production request's validated rows, to be predicted by each shadow version."""

    request_id: str
    principal: str | None
    rows: list[dict[str, Any]]
    primary_ids: list[uuid.UUID]
    shadows: tuple[ServedModel, ...]


class ShadowQueue:
    """Runs shadow jobs in the background, a bounded number at a time."""

    def __init__(
        self,
        *,
        inference: Inference,
        sessions: async_sessionmaker[AsyncSession],
        queue_size: int,
        in_flight: int,
    ) -> None:
        self.inference = inference
        self.sessions = sessions
        self.queue_size = queue_size
        self.in_flight = in_flight
        self._queue: asyncio.Queue[ShadowJob] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._writer: MicroBatcher[Rows, None] = MicroBatcher(
            self._commit, max_in_flight=1, max_weight=2_000, weight=len
        )

    def start(self) -> None:
        """Start the workers (in the running event loop)."""
        self._queue = asyncio.Queue(maxsize=max(self.queue_size, 1))
        self._workers = [
            asyncio.create_task(self._work(), name=f"shadow-{index}")
            for index in range(self.in_flight)
        ]

    def defer(self, job: ShadowJob) -> None:
        """Queue `job` once the current response has been sent."""
        after_response(lambda: self.submit(job))

    def submit(self, job: ShadowJob) -> bool:
        """Queue `job` now; False (and counted as dropped) when the queue is full."""
        if self._queue is None or self.queue_size == 0 or self._queue.full():
            for model in job.shadows:
                SHADOW_JOBS.labels(model=model.ref.name, outcome="dropped").inc()
            return False
        self._queue.put_nowait(job)
        return True

    async def idle(self) -> None:
        """Wait until every queued job has finished (tests and shutdown)."""
        if self._queue is not None:
            await self._queue.join()

    async def close(self) -> None:
        """Stop the workers; queued jobs are abandoned."""
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            job = await self._queue.get()
            try:
                for model in job.shadows:
                    await self._run(job, model)
            finally:
                self._queue.task_done()

    async def _run(self, job: ShadowJob, model: ServedModel) -> None:
        try:
            # The rows passed production's validation; a shadow only flags what lies outside
            # its own training ranges (its features and types match: the deployment checked).
            validated = validate_rows(
                job.rows,
                model.metadata.feature_schema,
                policy="flag",
                max_rows=max(len(job.rows), 1),
            )
            encoded = model.metadata.feature_schema.encode_rows(validated.rows)
            started = time.perf_counter()
            probabilities = await self.inference.probabilities(model, encoded)
            latency_ms = (time.perf_counter() - started) * 1000
            outputs = prediction_outputs(probabilities, model.metadata.output_schema.classes)
            now = datetime.now(UTC)
            await self._writer.submit(
                [
                    {
                        "id": uuid.uuid4(),
                        "request_id": job.request_id,
                        "model_name": model.ref.name,
                        "model_version": model.ref.version,
                        "inputs": inputs,
                        "outputs": {**output, "out_of_range": flagged},
                        "latency_ms": latency_ms,
                        "principal": job.principal,
                        "created_at": now,
                        "role": "shadow",
                        "shadow_of": primary,
                    }
                    for inputs, output, flagged, primary in zip(
                        validated.rows,
                        outputs,
                        validated.out_of_range,
                        job.primary_ids,
                        strict=True,
                    )
                ]
            )
        except Exception as exc:
            SHADOW_JOBS.labels(model=model.ref.name, outcome="failed").inc()
            logger.warning(
                "shadow prediction by %s failed: %r",
                model.ref.tag,
                exc,
                extra={"request_id": job.request_id},
            )
            return
        DEPLOYMENT_REQUESTS.labels(
            model=model.ref.name, version=model.ref.version, role="shadow"
        ).inc()
        SHADOW_JOBS.labels(model=model.ref.name, outcome="stored").inc()

    async def _commit(self, batches: list[Rows]) -> list[None]:
        async with self.sessions() as session, session.begin():
            await add_predictions(session=session, rows=[row for rows in batches for row in rows])
        return [None] * len(batches)
