"""Input files of batch jobs: where they may come from, their format, their chunks.

Parquet and CSV are read as streams of record batches (pyarrow), re-cut into chunks of exactly
`chunk_rows` rows, so memory follows the chunk size and a chunk number names the same rows on
every attempt (a resumed job skips the chunks it committed).
"""

import contextlib
import csv
import io
import posixpath
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from services.artifact.schema import FeatureSchema
from services.errors import ValidationFailed

FileFormat = Literal["parquet", "csv"]
PARQUET_MAGIC = b"PAR1"
CSV_BLOCK_BYTES = 1 << 20


@dataclass(frozen=True)
class InputFile:
    """A readable input: a filesystem, the path on it, and its format."""

    filesystem: pafs.FileSystem
    path: str
    format: FileFormat

    @classmethod
    def at(cls, location: str, file_format: FileFormat | None = None) -> "InputFile":
        """A local path or a pyarrow filesystem URI (s3://, gs://, hdfs://)."""
        if urlparse(location).scheme in ("", "file"):
            filesystem: pafs.FileSystem = pafs.LocalFileSystem()
            path = str(Path(location.removeprefix("file://")))
        else:
            filesystem, path = pafs.FileSystem.from_uri(location)
        return cls(filesystem, path, file_format or sniff_format(filesystem, path))


def sniff_format(filesystem: pafs.FileSystem, path: str) -> FileFormat:
    """Parquet files start with PAR1; anything else is read as CSV."""
    with filesystem.open_input_stream(path) as stream:
        return "parquet" if stream.read(4) == PARQUET_MAGIC else "csv"


def allowed_source(location: str, allowed: tuple[str, ...]) -> str:
    """`location` if it lies under one of the allow-listed directories or URI prefixes (after
    resolving `..` and symbolic links), else ValidationFailed: a job never reads elsewhere."""
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        resolved = Path(location.removeprefix("file://")).resolve()
        for root in allowed:
            if urlparse(root).scheme in ("", "file"):
                base = Path(root.removeprefix("file://")).resolve()
                if resolved.is_relative_to(base) and resolved.is_file():
                    return str(resolved)
    elif not parsed.query and not parsed.fragment and not parsed.params:
        # No query: pyarrow reads filesystem options (endpoint, scheme, credentials) from it,
        # and those are for ops to set, not callers. The decoded, normalised path must stay
        # under an allowed prefix of the same scheme and bucket.
        path = posixpath.normpath("/" + unquote(parsed.path).lstrip("/"))
        for root in allowed:
            allowed_root = urlparse(root)
            if (allowed_root.scheme, allowed_root.netloc) != (
                parsed.scheme,
                parsed.netloc,
            ) or allowed_root.query:
                continue
            root_path = unquote(allowed_root.path).lstrip("/")
            prefix = posixpath.normpath("/" + root_path).rstrip("/") + "/"
            if path.startswith(prefix) and ".." not in unquote(parsed.path).split("/"):
                return location
    raise ValidationFailed(
        "source is not a file under a directory this server allows (JOBS_SOURCES)",
        details={"errors": [{"field": "source", "code": "source_not_allowed"}]},
    )


def csv_types(schema: FeatureSchema) -> dict[str, pa.DataType]:
    """Each feature's column type in a CSV file: no guessing from the first block."""
    kinds = {
        "float": pa.float64(),
        "int": pa.float64(),
        "bool": pa.bool_(),
        "category": pa.string(),
    }
    return {spec.name: kinds[spec.dtype] for spec in schema.features}


def csv_header(source: InputFile) -> list[str]:
    """The column names on a CSV file's first line."""
    with source.filesystem.open_input_stream(source.path) as stream:
        first = stream.read(CSV_BLOCK_BYTES).split(b"\n", 1)[0].decode("utf-8-sig")
    return next(csv.reader(io.StringIO(first)), [])


def read_schema(
    source: InputFile, schema: FeatureSchema, *, id_column: str | None = None
) -> tuple[pa.Schema, int | None]:
    """The file's columns (a CSV's header: features typed as the model needs, the id column as
    text, other columns not read at all) and its row count where the format records it. A
    CSV's first block is parsed, so most bad values show here."""
    if source.format == "parquet":
        with source.filesystem.open_input_file(source.path) as handle:
            metadata = pq.ParquetFile(handle).metadata
            return metadata.schema.to_arrow_schema(), metadata.num_rows
    header = csv_header(source)
    with source.filesystem.open_input_stream(source.path) as stream:
        reader = _csv_reader(stream, schema, header, id_column)
        with contextlib.suppress(StopIteration):  # a header and no rows: a 0-row file
            reader.read_next_batch()
        kinds = {field.name: field.type for field in reader.schema}
    # Columns that are not read are still the file's: reported as ignored, typed as text.
    return pa.schema([(name, kinds.get(name, pa.string())) for name in header]), None


def _csv_reader(
    stream: pa.NativeFile, schema: FeatureSchema, header: list[str], id_column: str | None
) -> pacsv.CSVStreamingReader:
    types = csv_types(schema)
    wanted = [name for name in header if name in types or name == id_column]
    if id_column is not None:
        types[id_column] = pa.string()
    return pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            include_columns=wanted,
            # Only an empty cell is missing: "NA" may be a category and "nan" a number that the
            # checks refuse (not_finite), as REST would.
            null_values=[""],
            strings_can_be_null=True,
        ),
    )


def row_group_tasks(source: InputFile, rows_per_task: int) -> list[tuple[int, list[int]]]:
    """A Parquet file cut along its row groups into tasks of at least `rows_per_task` rows
    (the last may be smaller): (first row, row groups) each, in file order."""
    with source.filesystem.open_input_file(source.path) as handle:
        metadata = pq.ParquetFile(handle).metadata
    tasks: list[tuple[int, list[int]]] = []
    first, rows, groups = 0, 0, []
    for group in range(metadata.num_row_groups):
        groups.append(group)
        rows += metadata.row_group(group).num_rows
        if rows >= rows_per_task:
            tasks.append((first, groups))
            first, rows, groups = first + rows, 0, []
    if groups:
        tasks.append((first, groups))
    return tasks


def chunks(
    source: InputFile,
    schema: FeatureSchema,
    *,
    chunk_rows: int,
    columns: list[str],
    start: int = 0,
    row_groups: list[int] | None = None,
) -> Generator[pa.RecordBatch, None, None]:
    """Chunks `start`, `start + 1`... of `columns`, each exactly `chunk_rows` rows (the last
    may be shorter); of a Parquet file's `row_groups` only, when given."""
    skip = start * chunk_rows
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in _batches(source, schema, columns, chunk_rows, skip, row_groups):
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        held += batch.num_rows
        while held >= chunk_rows:
            table = pa.Table.from_batches(pending).combine_chunks()
            yield table.slice(0, chunk_rows).to_batches()[0]
            rest = table.slice(chunk_rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


def _batches(
    source: InputFile,
    schema: FeatureSchema,
    columns: list[str],
    batch_rows: int,
    skip: int,
    row_groups: list[int] | None = None,
) -> Iterator[pa.RecordBatch]:
    """The file's rows after the first `skip`, in batches of at most `batch_rows`."""
    if source.format == "parquet":
        with source.filesystem.open_input_file(source.path) as handle:
            parquet = pq.ParquetFile(handle)
            wanted = [name for name in columns if name in parquet.schema_arrow.names]
            # One row group at a time: a reader over the whole file keeps what it decoded
            # (measured: its Arrow memory grew to the file's size), one per group does not.
            # Whole row groups before the resume point are skipped unread.
            groups = range(parquet.metadata.num_row_groups) if row_groups is None else row_groups
            for group in groups:
                rows = parquet.metadata.row_group(group).num_rows
                if skip >= rows:
                    skip -= rows
                    continue
                for batch in parquet.iter_batches(
                    batch_size=batch_rows, row_groups=[group], columns=wanted
                ):
                    if skip:
                        batch, skip = (
                            batch.slice(min(skip, batch.num_rows)),
                            max(0, skip - batch.num_rows),
                        )
                    yield batch
        return
    header = csv_header(source)
    id_column = next((name for name in columns if name not in schema.name_set), None)
    with source.filesystem.open_input_stream(source.path) as stream:
        reader = _csv_reader(stream, schema, header, id_column)
        wanted = [name for name in columns if name in reader.schema.names]
        for batch in reader:
            if skip:
                if batch.num_rows <= skip:
                    skip -= batch.num_rows
                    continue
                batch, skip = batch.slice(skip), 0
            yield batch.select(wanted)
