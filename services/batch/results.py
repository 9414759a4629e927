"""A job's result: one Parquet row per input row, written per chunk, merged at the end."""

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from services.artifact.digests import file_sha256
from services.artifact.schema import ClassLabel
from services.batch.columns import EncodedChunk

NOT_SCORABLE = "not_scorable"


def probability_column(label: ClassLabel) -> str:
    return f"probability_{label}"


def _integer_classes(classes: Sequence[ClassLabel]) -> bool:
    """Whether the label column holds integers (every class is one), else strings."""
    return all(isinstance(c, int) and not isinstance(c, bool) for c in classes)


def label_array(classes: Sequence[ClassLabel], best: npt.NDArray[np.intp]) -> pa.Array:
    """The predicted labels, typed as `result_schema` types them."""
    if _integer_classes(classes):
        return pa.array(np.asarray(classes, dtype=np.int64)[best], type=pa.int64())
    return pa.array([str(classes[i]) for i in best], type=pa.string())


def result_schema(
    classes: Sequence[ClassLabel], id_type: pa.DataType | None = None, id_column: str = "id"
) -> pa.Schema:
    """The result's columns: the input row's position (and its id column, when named), the
    served version, the label, its score, every class's probability, the features accepted
    outside their training range, the row's problem, and its id in the prediction log."""
    fields = [pa.field("row", pa.int64(), nullable=False)]
    if id_type is not None:
        fields.append(pa.field(id_column, id_type))
    fields += [
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("label", pa.int64() if _integer_classes(classes) else pa.string()),
        pa.field("score", pa.float64()),
        *(pa.field(probability_column(label), pa.float64()) for label in classes),
        pa.field("out_of_range", pa.string()),
        pa.field("error", pa.string()),
        pa.field("prediction_id", pa.string()),
    ]
    return pa.schema(fields)


def scorable(
    encoded: EncodedChunk, probabilities: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.bool_], list[str | None]]:
    """Rows whose output is finite (a far-out-of-range row under the flag policy may not be):
    the final ok mask and errors, as the REST path refuses such a row with `not_scorable`."""
    ok = encoded.ok.copy()
    errors = list(encoded.errors)
    finite = np.isfinite(probabilities).all(axis=1) if len(probabilities) else np.ones(0, bool)
    if not finite.all():
        for index in np.flatnonzero(ok)[~finite]:
            ok[index] = False
            errors[index] = NOT_SCORABLE
    return ok, errors


def result_batch(
    *,
    schema: pa.Schema,
    first_row: int,
    classes: Sequence[ClassLabel],
    version: str,
    ok: npt.NDArray[np.bool_],
    probabilities: npt.NDArray[np.float64],  # rows of `encoded.matrix` (ok before `scorable`)
    passed: npt.NDArray[np.bool_],  # rows that reached the model
    errors: list[str | None],
    flagged: list[list[str]],
    prediction_ids: Sequence[uuid.UUID | None] | None,
    ids: pa.Array | None,
) -> pa.RecordBatch:
    rows = len(ok)
    full = np.full((rows, len(classes)), np.nan)
    full[passed] = probabilities
    missing = ~ok
    best = np.argmax(np.where(np.isnan(full), -np.inf, full), axis=1)
    label = label_array(classes, best)
    columns: dict[str, Any] = {"row": pa.array(np.arange(first_row, first_row + rows))}
    if ids is not None:
        columns[schema.names[1]] = ids
    columns["model_version"] = pa.array([version] * rows, type=pa.string())
    columns["label"] = pa.array(label.to_numpy(zero_copy_only=False), mask=missing, type=label.type)
    columns["score"] = pa.array(full[np.arange(rows), best], mask=missing)
    for i, name in enumerate(classes):
        columns[probability_column(name)] = pa.array(full[:, i], mask=missing)
    columns["out_of_range"] = pa.array(
        [",".join(names) if names else None for names in flagged], type=pa.string()
    )
    columns["error"] = pa.array(errors, type=pa.string())
    columns["prediction_id"] = pa.array(
        [str(i) if i is not None else None for i in prediction_ids]
        if prediction_ids is not None
        else [None] * rows,
        type=pa.string(),
    )
    return pa.RecordBatch.from_arrays(
        [pa.array(columns[name]).cast(schema.field(name).type) for name in schema.names],
        schema=schema,
    )


@dataclass(frozen=True)
class ScoredChunk:
    """A chunk's result rows, which rows were scored, and their prediction-log ids."""

    batch: pa.RecordBatch
    ok: npt.NDArray[np.bool_]
    prediction_ids: list[uuid.UUID | None] | None


def score_result(
    *,
    schema: pa.Schema,
    first_row: int,
    classes: Sequence[ClassLabel],
    version: str,
    encoded: EncodedChunk,
    probabilities: npt.NDArray[np.float64],
    ids: pa.Array | None = None,
    with_prediction_ids: bool = False,
) -> ScoredChunk:
    """The result rows of one checked chunk, given the model's probabilities for its passed
    rows: what the job worker and the Dask engine both write."""
    ok, errors = scorable(encoded, probabilities)
    prediction_ids = (
        [uuid.uuid4() if good else None for good in ok] if with_prediction_ids else None
    )
    batch = result_batch(
        schema=schema,
        first_row=first_row,
        classes=classes,
        version=version,
        ok=ok,
        probabilities=probabilities,
        passed=encoded.ok,
        errors=errors,
        flagged=encoded.flagged,
        prediction_ids=prediction_ids,
        ids=ids,
    )
    return ScoredChunk(batch=batch, ok=ok, prediction_ids=prediction_ids)


def part_path(directory: Path, chunk: int) -> Path:
    return directory / "parts" / f"part-{chunk:07d}.parquet"


def write_part(directory: Path, chunk: int, batch: pa.RecordBatch) -> str:
    """One chunk's rows, replacing whatever an interrupted attempt left (write, then rename);
    returns the part's SHA-256."""
    path = part_path(directory, chunk)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    pq.write_table(pa.Table.from_batches([batch]), temporary)
    digest = file_sha256(temporary)
    os.replace(temporary, path)
    return digest


def merge_parts(directory: Path, chunks: int, schema: pa.Schema) -> Path:
    """The result file from parts 0..chunks-1, one part in memory at a time; parts removed."""
    result = directory / "result.parquet"
    if chunks and result.is_file() and not part_path(directory, 0).exists():
        return result  # merged before a stop that came before the job was marked succeeded
    temporary = directory / "result.parquet.tmp"
    with pq.ParquetWriter(temporary, schema) as writer:
        for chunk in range(chunks):
            writer.write_table(pq.read_table(part_path(directory, chunk), schema=schema))
    os.replace(temporary, result)
    for chunk in range(chunks):
        part_path(directory, chunk).unlink(missing_ok=True)
    return result
