"""A file's columns checked and encoded as the REST path checks and encodes rows, by column.

The same rules as `services.pipeline.validation` (required values, categories, booleans, finite
numbers a float32 holds, integers, the training range under the range policy) and the same
encoding as `FeatureSchema.encode_columns`, vectorised: a chunk of a million-row file costs
numpy time, not a Python loop per value. A test holds both paths to the same answers.

Row problems do not fail the job: the row is reported failed with its first problem
(`code:feature`), as a REST request naming that row would be refused.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from services.artifact.schema import FeatureSchema, FeatureSpec
from services.pipeline.validation import FLOAT32_MAX, RangePolicy


@dataclass(frozen=True)
class ColumnCheck:
    """A file's columns against a model's features: what is wrong, and what will be ignored."""

    problems: list[dict[str, Any]]
    ignored: list[str]


def check_columns(
    columns: pa.Schema, schema: FeatureSchema, *, id_column: str | None = None
) -> ColumnCheck:
    """Problems with a file's columns (missing features, wrong types), before any row is read.

    Columns that are not features (labels, keys) are ignored and reported; a feature whose
    missing values are imputed may be absent altogether."""
    problems: list[dict[str, Any]] = []
    for spec in schema.features:
        if spec.name not in columns.names:
            if spec.missing != "impute":
                problems.append(_problem(spec.name, "missing_column", "required by the model"))
            continue
        expected = _accepts(spec, columns.field(spec.name).type)
        if expected is not None:
            problems.append(
                _problem(
                    spec.name,
                    "wrong_type",
                    f"expected {expected}, found {columns.field(spec.name).type}",
                )
            )
    if id_column is not None and id_column not in columns.names:
        problems.append(_problem(id_column, "missing_column", "named as the id column"))
    ignored = [name for name in columns.names if name not in schema.name_set and name != id_column]
    return ColumnCheck(problems=problems, ignored=ignored)


def _accepts(spec: FeatureSpec, kind: pa.DataType) -> str | None:
    """None when a column of type `kind` can hold the feature's values, else what it needs."""
    if pa.types.is_null(kind):
        return None  # every value missing: the row check decides (impute, or `missing`)
    if spec.dtype == "bool":
        return None if pa.types.is_boolean(kind) else "a boolean column"
    if spec.dtype == "category":
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        textual = pa.types.is_string(kind) or pa.types.is_large_string(kind)
        return None if textual else "a string column"
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
    return None if numeric else "a numeric (integer or floating-point) column"


def _problem(field: str, code: str, message: str) -> dict[str, Any]:
    return {"field": field, "code": code, "message": message}


@dataclass(frozen=True)
class EncodedChunk:
    """One chunk's rows as the model input, and per row its fate."""

    matrix: npt.NDArray[np.float32]  # the rows that passed, in file order
    ok: npt.NDArray[np.bool_]  # per row of the chunk
    errors: list[str | None]  # per row: its first problem as `code:feature`, or None
    flagged: list[list[str]]  # per row: features accepted outside their range (policy flag)


def encode_chunk(
    batch: pa.RecordBatch, schema: FeatureSchema, *, policy: RangePolicy
) -> EncodedChunk:
    """Check every row of `batch` and encode the rows that pass (columns already checked)."""
    rows = batch.num_rows
    error = np.full(rows, None, dtype=object)
    flags: list[tuple[str, npt.NDArray[np.bool_]]] = []
    encoded = []
    for spec in schema.features:
        column = batch.column(spec.name) if spec.name in batch.schema.names else None
        values, problems, outside = _feature(spec, column, rows)
        for code, mask in problems:
            error[mask & (error == None)] = f"{code}:{spec.name}"  # noqa: E711 (elementwise)
        if outside is not None:
            if policy == "reject":
                error[outside & (error == None)] = f"out_of_range:{spec.name}"  # noqa: E711
            else:
                flags.append((spec.name, outside))
        encoded.append(values)
    ok = np.asarray(error == None, dtype=bool)  # noqa: E711
    matrix = np.ascontiguousarray(np.stack(encoded, axis=1)[ok], dtype=np.float32)
    flagged: list[list[str]] = [[] for _ in range(rows)]
    for name, mask in flags:
        for index in np.flatnonzero(mask & ok):
            flagged[index].append(name)
    return EncodedChunk(matrix=matrix, ok=ok, errors=list(error), flagged=flagged)


Problems = list[tuple[str, npt.NDArray[np.bool_]]]


def _feature(
    spec: FeatureSpec, column: pa.Array | pa.ChunkedArray | None, rows: int
) -> tuple[npt.NDArray[np.float64], Problems, npt.NDArray[np.bool_] | None]:
    """The encoded column (NaN where unusable), its problems in the REST order, and the
    rows outside the training range."""
    if column is None or pa.types.is_null(column.type):
        missing = np.ones(rows, dtype=bool)
        values = np.full(rows, np.nan)
        return _impute(spec, values, missing), _missing(spec, missing), None
    missing = np.asarray(column.is_null(), dtype=bool)
    problems: Problems = _missing(spec, missing)
    if spec.dtype == "category":
        assert spec.categories is not None
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        codes = pc.index_in(column, value_set=pa.array(spec.categories, type=column.type))
        known = np.asarray(codes.is_valid(), dtype=bool)
        values = np.asarray(codes.cast(pa.float64()).fill_null(np.nan), dtype=np.float64)
        problems.append(("unknown_category", ~known & ~missing))
        return _impute(spec, values, missing), problems, None
    if spec.dtype == "bool":
        values = np.asarray(column.cast(pa.float64()).fill_null(np.nan), dtype=np.float64)
        return _impute(spec, values, missing), problems, None
    values = np.asarray(
        column.cast(pa.float64(), safe=False).fill_null(np.nan), dtype=np.float64
    ).copy()
    present = ~missing
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(values)
        problems.append(("not_finite", present & ~finite))
        representable = np.abs(values) <= FLOAT32_MAX
        problems.append(("not_representable", present & finite & ~representable))
        if spec.dtype == "int" and pa.types.is_floating(column.type):
            problems.append(("wrong_type", present & finite & (values != np.floor(values))))
        low = spec.minimum if spec.minimum is not None else -np.inf
        high = spec.maximum if spec.maximum is not None else np.inf
        outside = present & finite & ((values < low) | (values > high))
    values[~finite & present] = np.nan
    return _impute(spec, values, missing), problems, outside


def _missing(spec: FeatureSpec, missing: npt.NDArray[np.bool_]) -> Problems:
    return [] if spec.missing == "impute" else [("missing", missing)]


def _impute(
    spec: FeatureSpec, values: npt.NDArray[np.float64], missing: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    if spec.missing == "impute":
        assert spec.impute_value is not None
        values[missing] = spec.impute_value
    return values
