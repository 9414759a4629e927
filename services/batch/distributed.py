"""Batch scoring past one machine: the files of a Parquet dataset scored on Dask.

Each Dask task scores one file of the dataset (a partition), chunk by chunk, with the model
loaded on that worker through the verifying loader (digests, recorded execution and golden
outputs, as a runner does; once per worker process), and writes one result file with the same
columns as a job's result. Rows are numbered across the whole dataset in file order, from the
row counts in the files' Parquet footers, so the result does not depend on how Dask placed
the tasks. Memory per task follows the chunk size, not the file size.

Scores with the model directly (no gateway, no prediction log): it is for datasets that a
gateway job would stream through one replica too slowly.
"""

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from services.artifact.loader import VerifiedModel, load_from_store
from services.batch.columns import check_columns, encode_chunk
from services.batch.files import InputFile, chunks
from services.batch.results import result_schema, score_result
from services.errors import ValidationFailed
from services.pipeline.validation import RangePolicy
from services.settings import serving_settings

logger = logging.getLogger("services.batch")
DEFAULT_CHUNK_ROWS = 16_384


@dataclass(frozen=True)
class FileReport:
    """What one task did: its input, output, rows, failures, and where it ran."""

    source: str
    output: str
    rows: int
    failed: int
    worker_pid: int
    model: str


@functools.lru_cache(maxsize=8)
def verified_model(tag: str) -> VerifiedModel:
    """The model, loaded and verified once per worker process (within
    SERVING_GOLDEN_TOLERANCE where the worker's kernels differ from the exporter's)."""
    return load_from_store(tag, golden_tolerance=serving_settings().golden_tolerance)


def dataset_files(location: str) -> list[str]:
    """The Parquet files of a dataset (a directory, searched recursively), or one file."""
    path = Path(location)
    if path.is_file():
        return [str(path)]
    files = sorted(str(p) for p in path.rglob("*.parquet") if p.is_file())
    if not files:
        raise ValidationFailed(f"no Parquet files under {location}")
    return files


def score_file(
    source: str,
    output: str,
    first_row: int,
    *,
    tag: str,
    policy: RangePolicy,
    chunk_rows: int,
    id_column: str | None,
    row_groups: list[int] | None = None,
) -> FileReport:
    """Score one Parquet file (or its `row_groups`) into `output` (a Dask task; runs on a
    worker)."""
    model = verified_model(tag)
    features = model.metadata.feature_schema
    classes = model.metadata.output_schema.classes
    columns = pq.ParquetFile(source).schema_arrow
    problems = check_columns(columns, features, id_column=id_column).problems
    if problems:
        raise ValidationFailed(
            f"{source}: the columns do not fit {tag}", details={"errors": problems}
        )
    id_type = columns.field(id_column).type if id_column else None
    schema = result_schema(classes, id_type, id_column or "id")
    wanted = [*features.names, *([id_column] if id_column else [])]
    rows = failed = 0
    temporary = output + ".tmp"
    try:
        with pq.ParquetWriter(temporary, schema) as writer:
            for batch in chunks(
                InputFile.at(source, "parquet"),
                features,
                chunk_rows=chunk_rows,
                columns=wanted,
                row_groups=row_groups,
            ):
                encoded = encode_chunk(batch, features, policy=policy)
                probabilities = (
                    model.predictor.predict_proba(encoded.matrix)
                    if len(encoded.matrix)
                    else np.zeros((0, len(classes)))
                )
                scored = score_result(
                    schema=schema,
                    first_row=first_row + rows,
                    classes=classes,
                    version=model.version,
                    encoded=encoded,
                    probabilities=np.asarray(probabilities, dtype=np.float64),
                    ids=batch.column(id_column) if id_column else None,
                )
                writer.write_batch(scored.batch)
                rows += batch.num_rows
                failed += int((~scored.ok).sum())
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    os.replace(temporary, output)
    return FileReport(source, output, rows, failed, os.getpid(), model.tag)


def score_dataset(
    client: Any,
    *,
    source: str,
    output: str,
    tag: str,
    policy: RangePolicy = "reject",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    id_column: str | None = None,
    progress: Callable[[FileReport, int, int], None] = lambda report, done, total: None,
) -> list[FileReport]:
    """Score every file of `source` on the Dask cluster behind `client` into `output`/
    part-NNNNN.parquet (one per input file, in file order); the model is verified here first,
    so a bad artifact fails before any task runs. `progress` hears of each finished file."""
    from dask.distributed import as_completed

    model = verified_model(tag)
    files = dataset_files(source)
    counts = [pq.ParquetFile(path).metadata.num_rows for path in files]
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist()
    Path(output).mkdir(parents=True, exist_ok=True)
    futures = client.map(
        functools.partial(
            score_file,
            tag=model.tag,
            policy=policy,
            chunk_rows=chunk_rows,
            id_column=id_column,
        ),
        files,
        [str(Path(output) / f"part-{index:05d}.parquet") for index in range(len(files))],
        offsets,
        pure=False,
    )
    reports: list[FileReport] = []
    for future in as_completed(futures):  # type: ignore[no-untyped-call]
        report = future.result()
        reports.append(report)
        progress(report, len(reports), len(files))
    return sorted(reports, key=lambda report: report.output)
