"""/jobs: batch scoring of files (Parquet or CSV), a thin adapter over services.batch.

POST answers 202 once the file's columns fit the model and the job is queued; a gateway worker
scores it chunk by chunk through the prediction service; GET shows progress, GET .../result
downloads the Parquet result, DELETE cancels (or removes a finished job).
"""

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from fastapi.responses import FileResponse

from services.auth.middleware import API_PREFIX
from services.auth.scopes import PREDICTIONS_READ, PREDICTIONS_WRITE
from services.batch.jobs import JobService, JobSubmission
from services.errors import ServiceUnavailable
from services.gateway.dependencies import CallerDep, RuntimeDep, StoreDep, require
from services.gateway.query import JobListQuery
from services.gateway.schemas import ERROR_RESPONSES, MODEL_REF, JobRecord, error_responses
from services.http.context import current_request, new_request_id
from services.http.envelope import Envelope, PageEnvelope, success

JOBS_PATH = f"{API_PREFIX}/jobs"
PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
COLUMN_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=ERROR_RESPONSES)


async def get_jobs(runtime: RuntimeDep, _store: StoreDep) -> JobService:
    """The job service, through the prediction log's dependency (its breaker and the 503 a
    database outage becomes); 503 where jobs are switched off."""
    if runtime.jobs is None:
        raise ServiceUnavailable("batch jobs are disabled on this deployment (JOBS_ENABLED)")
    return runtime.jobs


JobsDep = Annotated[JobService, Depends(get_jobs)]


def _record(job: Any) -> JobRecord:
    return JobRecord.of(job, result_url=f"{JOBS_PATH}/{job.id}/result")


@router.post(
    "",
    status_code=202,
    response_model=Envelope[JobRecord],
    summary="Score a Parquet or CSV file with one model",
    description="Multipart form: `model`, and either `file` (an upload, up to "
    "JOBS_MAX_UPLOAD_BYTES) or `source` (a file under a directory the server allows, "
    "JOBS_SOURCES). The file's columns are checked against the model's features first (422 "
    "listing every problem; columns that are not features are ignored and listed). A bare "
    "model name scores with its production version now, kept to the end of the job. Rows that "
    "fail their checks are reported per row in the result, not fatal to the job.",
    responses=error_responses(409),
    dependencies=[require(PREDICTIONS_WRITE)],
)
async def create_job(
    jobs: JobsDep,
    caller: CallerDep,
    response: Response,
    model: Annotated[str, Form(pattern=MODEL_REF, max_length=200)],
    file: Annotated[UploadFile | None, File(description="Parquet or CSV")] = None,
    source: Annotated[str | None, Form(min_length=1, max_length=1024)] = None,
    format: Annotated[
        Literal["parquet", "csv"] | None,
        Form(description="default: Parquet if the file starts with PAR1, else CSV"),
    ] = None,
    id_column: Annotated[
        str | None,
        Form(pattern=COLUMN_NAME, max_length=64, description="copied into the result"),
    ] = None,
    log_rows: Annotated[
        bool | None, Form(description="also write every scored row to the prediction log")
    ] = None,
) -> dict[str, Any]:
    context = current_request.get()
    job = await jobs.submit(
        JobSubmission(
            model=model,
            caller=caller,
            request_id=context.request_id if context else new_request_id(),
            upload=file.file if file is not None else None,
            source=source,
            file_format=format,
            id_column=id_column,
            log_rows=log_rows,
        )
    )
    response.headers["Location"] = f"{JOBS_PATH}/{job.id}"
    return success(_record(job))


@router.get(
    "",
    response_model=PageEnvelope[JobRecord],
    summary="Page through jobs (yours; an admin's: everyone's), newest first",
    dependencies=[require(PREDICTIONS_READ)],
)
async def list_jobs(
    jobs: JobsDep, caller: CallerDep, params: Annotated[JobListQuery, Query()]
) -> dict[str, Any]:
    page, total = await jobs.page(
        caller, status=params.status, offset=params.offset, limit=params.limit
    )
    return success([_record(job) for job in page], **params.meta(total))


@router.get(
    "/{job_id}",
    response_model=Envelope[JobRecord],
    summary="One job: status and progress",
    dependencies=[require(PREDICTIONS_READ)],
)
async def get_job(job_id: uuid.UUID, jobs: JobsDep, caller: CallerDep) -> dict[str, Any]:
    return success(_record(await jobs.get(caller, job_id)))


@router.get(
    "/{job_id}/result",
    summary="Download a succeeded job's result (Parquet)",
    description="One row per input row: `row` (its position in the file), the id column when "
    "one was named, `model_version`, `label`, `score`, `probability_<class>` per class, "
    "`out_of_range`, `error` (the row's first problem, e.g. `missing:amount`) and "
    "`prediction_id` (its entry in the prediction log, when logged). 409 until it succeeded.",
    response_class=FileResponse,
    responses={200: {"content": {PARQUET_MEDIA_TYPE: {}}}, **error_responses(409)},
    dependencies=[require(PREDICTIONS_READ)],
)
async def get_job_result(job_id: uuid.UUID, jobs: JobsDep, caller: CallerDep) -> FileResponse:
    path, job = await jobs.result(caller, job_id)
    return FileResponse(
        path,
        media_type=PARQUET_MEDIA_TYPE,
        filename=f"{job.model_name}-{job.id}.parquet",
    )


@router.delete(
    "/{job_id}",
    response_model=Envelope[JobRecord],
    summary="Cancel a queued or running job; delete a finished one with its files",
    description="200 with the cancelled job (a running job stops at its next chunk; its rows "
    "already logged stay); 204 when a finished job and its result were deleted.",
    responses={204: {"description": "the finished job and its files were deleted"}},
    dependencies=[require(PREDICTIONS_WRITE)],
)
async def delete_job(job_id: uuid.UUID, jobs: JobsDep, caller: CallerDep) -> Any:
    job = await jobs.cancel(caller, job_id)
    if job is None:
        return Response(status_code=204)
    return success(_record(job))
