"""Batch-scoring jobs as the API sees them: submit (checked before it is accepted), read,
list, cancel, and the result file. Scoring itself is the worker's (services.batch.worker)."""

import asyncio
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pyarrow as pa

from db.models import ScoringJob
from db.repositories import jobs as repository
from db.repositories.jobs import JobStatus
from services.artifact.metadata import ArtifactMetadata
from services.auth.principal import Principal, authorize
from services.auth.scopes import ADMIN, PREDICTIONS_READ, PREDICTIONS_WRITE
from services.batch.columns import ColumnCheck, check_columns
from services.batch.files import FileFormat, InputFile, allowed_source, read_schema
from services.batch.results import result_schema
from services.batch.settings import JobSettings
from services.errors import Conflict, NotFound, ValidationFailed
from services.http.envelope import as_utc
from services.persistence import PredictionStore
from services.pipeline.prediction_service import PredictionService

UPLOAD_NAME = "input"
COPY_BUFFER = 1 << 20


class JobNotFinished(Conflict):
    """The job has no result yet (or ended without one)."""

    error_code = "job_not_finished"


@dataclass(frozen=True)
class JobSubmission:
    """What a client asks to score: an uploaded file or an allow-listed reference."""

    model: str
    caller: Principal | None
    request_id: str
    upload: IO[bytes] | None = None
    source: str | None = None
    file_format: FileFormat | None = None
    id_column: str | None = None
    log_rows: bool | None = None


class JobService:
    """Accepts jobs into the job table (the queue) and answers about them."""

    def __init__(
        self,
        *,
        store: PredictionStore,
        predictions: PredictionService,
        settings: JobSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.predictions = predictions
        self.settings = settings
        self.clock = clock

    @property
    def auth_enabled(self) -> bool:
        return self.predictions.auth_enabled

    def directory(self, job_id: uuid.UUID) -> Path:
        return self.settings.directory / str(job_id)

    async def submit(self, submission: JobSubmission) -> ScoringJob:
        """Check the file's columns against the model, then queue the job (202); 422 with
        every problem otherwise, leaving nothing behind."""
        authorize(submission.caller, PREDICTIONS_WRITE, auth_enabled=self.auth_enabled)
        if (submission.upload is None) == (submission.source is None):
            raise ValidationFailed(
                "send exactly one of `file` (an upload) and `source` (a reference)",
                details={"errors": [{"field": "file", "code": "one_source"}]},
            )
        model = self.predictions.batch_model(submission.model)
        reserved = result_schema(model.metadata.output_schema.classes).names
        if submission.id_column in reserved:
            raise ValidationFailed(
                f"id_column may not be one of the result's own columns {reserved}",
                details={"errors": [{"field": "id_column", "code": "reserved_name"}]},
            )
        job_id = uuid.uuid4()
        directory = self.directory(job_id)
        try:
            source, location, file_format, check, rows_total = await asyncio.to_thread(
                self._stage, submission, directory, model.metadata
            )
            if check.problems:
                raise ValidationFailed(
                    f"{len(check.problems)} problem(s) with the file's columns for {model.ref.tag}",
                    details={"errors": check.problems},
                )
            log_rows = (
                self.settings.log_rows if submission.log_rows is None else submission.log_rows
            )
            if self.settings.dask_scheduler and (log_rows or file_format != "parquet"):
                raise ValidationFailed(
                    "jobs run on Dask here: they take Parquet files and do not copy rows into "
                    "the prediction log (log_rows)",
                    details={"errors": [{"field": "log_rows", "code": "not_on_dask"}]},
                )
            now = self.clock()
            values = {
                "id": job_id,
                "request_id": submission.request_id,
                "principal": submission.caller.subject if submission.caller else None,
                "model_name": model.ref.name,
                "model_version": model.ref.version,
                "status": "queued",
                "source": source,
                "input_path": location,
                "input_format": file_format,
                "id_column": submission.id_column,
                "ignored_columns": check.ignored,
                "log_rows": log_rows,
                "chunk_rows": self.settings.chunk_rows,
                "rows_total": rows_total,
                "rows_done": 0,
                "rows_failed": 0,
                "chunks_done": 0,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
            async with self.store.sessions() as session, session.begin():
                await repository.create_job(session=session, values=values)
            async with self.store.sessions() as session:
                job = await repository.get_job(session=session, job_id=job_id)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        assert job is not None
        return job

    def _stage(
        self, submission: JobSubmission, directory: Path, metadata: ArtifactMetadata
    ) -> tuple[str, str, FileFormat, ColumnCheck, int | None]:
        """Store an upload (or check a reference), then read the file's columns (blocking)."""
        if submission.upload is not None:
            directory.mkdir(parents=True, exist_ok=False)
            location = str(directory / UPLOAD_NAME)
            with open(location, "wb") as target:
                shutil.copyfileobj(submission.upload, target, COPY_BUFFER)
            source = "upload"
        else:
            assert submission.source is not None
            location = allowed_source(submission.source, self.settings.sources)
            source = submission.source
        file_format, columns, rows_total = _read_columns(location, submission, metadata)
        check = check_columns(columns, metadata.feature_schema, id_column=submission.id_column)
        return source, location, file_format, check, rows_total

    async def get(self, caller: Principal | None, job_id: uuid.UUID) -> ScoringJob:
        """The job, if it exists and the caller may see it (its owner, or an admin)."""
        authorize(caller, PREDICTIONS_READ, auth_enabled=self.auth_enabled)
        return await self._find(caller, job_id)

    async def _find(self, caller: Principal | None, job_id: uuid.UUID) -> ScoringJob:
        async with self.store.sessions() as session:
            job = await repository.get_job(session=session, job_id=job_id)
        if job is None or not _visible(caller, job):
            raise NotFound(f"no job {job_id}")
        return job

    async def page(
        self, caller: Principal | None, *, status: JobStatus | None, offset: int, limit: int
    ) -> tuple[list[ScoringJob], int]:
        """The caller's jobs (an admin's: everyone's), newest first, and how many there are."""
        authorize(caller, PREDICTIONS_READ, auth_enabled=self.auth_enabled)
        owner = None if caller is None or caller.may(ADMIN) else caller.subject
        async with self.store.sessions() as session:
            total = await repository.count_jobs(session=session, principal=owner, status=status)
            jobs = await repository.list_jobs(
                session=session, principal=owner, status=status, offset=offset, limit=limit
            )
        return jobs, total

    async def cancel(self, caller: Principal | None, job_id: uuid.UUID) -> ScoringJob | None:
        """Cancel a queued or running job (the job, now cancelled); a finished job is deleted
        with its files (None)."""
        authorize(caller, PREDICTIONS_WRITE, auth_enabled=self.auth_enabled)
        job = await self._find(caller, job_id)
        async with self.store.sessions() as session, session.begin():
            if await repository.cancel_job(session=session, job_id=job_id, now=self.clock()):
                cancelled = True
            else:
                cancelled = False
                await repository.delete_job(session=session, job_id=job_id)
        if cancelled:
            # A running job's worker stops at its next chunk and removes what it wrote; a job
            # whose worker stopped renewing its lease has nobody to do that.
            expires = job.lease_expires_at
            if job.status == "queued" or expires is None or as_utc(expires) < self.clock():
                shutil.rmtree(self.directory(job_id), ignore_errors=True)
            return await self._find(caller, job_id)
        shutil.rmtree(self.directory(job_id), ignore_errors=True)
        return None

    async def result(self, caller: Principal | None, job_id: uuid.UUID) -> tuple[Path, ScoringJob]:
        """The result file of a succeeded job; 409 job_not_finished before that."""
        job = await self.get(caller, job_id)
        if job.status != "succeeded" or job.result_path is None:
            raise JobNotFinished(
                f"job {job_id} is {job.status}: a result exists once it has succeeded"
            )
        path = Path(job.result_path)
        if not path.is_file():
            raise NotFound(f"the result of job {job_id} is no longer stored")
        return path, job


def _visible(caller: Principal | None, job: ScoringJob) -> bool:
    return caller is None or caller.may(ADMIN) or job.principal == caller.subject


def _read_columns(
    location: str, submission: JobSubmission, metadata: ArtifactMetadata
) -> tuple[FileFormat, pa.Schema, int | None]:
    try:
        source = InputFile.at(location, submission.file_format)
        columns = read_schema(source, metadata.feature_schema, id_column=submission.id_column)
        return (source.format, *columns)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        message = (str(exc).splitlines() or [type(exc).__name__])[0].replace(location, "<file>")
        if submission.source:
            message = message.replace(submission.source, "<file>")
        raise ValidationFailed(
            "the file could not be read as Parquet or CSV",
            details={"errors": [{"field": "file", "code": "unreadable", "message": message[:300]}]},
        ) from None
