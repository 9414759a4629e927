"""Input files of batch jobs: where they may come from, their format, their chunks.

Parquet and CSV are read as streams of record batches (pyarrow), re-cut into chunks of exactly
`chunk_rows` rows, so memory follows the chunk size and a chunk number names the same rows on
every attempt (a resumed job skips the chunks it committed).
"""

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

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
    else:
        normal = location.rstrip("/")
        for root in allowed:
            prefix = root.rstrip("/") + "/"
            if normal.startswith(prefix) and ".." not in normal.split("/"):
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


def read_schema(source: InputFile, schema: FeatureSchema) -> tuple[pa.Schema, int | None]:
    """The file's columns (a CSV's header, typed as the features need) and its row count where
    the format records it. A CSV's first block is parsed, so most bad values show here."""
    if source.format == "parquet":
        with source.filesystem.open_input_file(source.path) as handle:
            metadata = pq.ParquetFile(handle).metadata
            return metadata.schema.to_arrow_schema(), metadata.num_rows
    with source.filesystem.open_input_stream(source.path) as stream:
        reader = _csv_reader(stream, schema)
        reader.read_next_batch()
        return reader.schema, None


def _csv_reader(stream: pa.NativeFile, schema: FeatureSchema) -> pacsv.CSVStreamingReader:
    return pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
        convert_options=pacsv.ConvertOptions(
            column_types=csv_types(schema), strings_can_be_null=True
        ),
    )


def chunks(
    source: InputFile,
    schema: FeatureSchema,
    *,
    chunk_rows: int,
    columns: list[str],
    start: int = 0,
) -> Generator[pa.RecordBatch, None, None]:
    """Chunks `start`, `start + 1`... of `columns`, each exactly `chunk_rows` rows (the last
    may be shorter)."""
    skip = start * chunk_rows
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in _batches(source, schema, columns, chunk_rows, skip):
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
    source: InputFile, schema: FeatureSchema, columns: list[str], batch_rows: int, skip: int
) -> Iterator[pa.RecordBatch]:
    """The file's rows after the first `skip`, in batches of at most `batch_rows`."""
    if source.format == "parquet":
        with source.filesystem.open_input_file(source.path) as handle:
            parquet = pq.ParquetFile(handle)
            wanted = [name for name in columns if name in parquet.schema_arrow.names]
            # One row group at a time: a reader over the whole file keeps what it decoded
            # (measured: its Arrow memory grew to the file's size), one per group does not.
            # Whole row groups before the resume point are skipped unread.
            for group in range(parquet.metadata.num_row_groups):
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
    with source.filesystem.open_input_stream(source.path) as stream:
        reader = _csv_reader(stream, schema)
        wanted = [name for name in columns if name in reader.schema.names]
        for batch in reader:
            if skip:
                if batch.num_rows <= skip:
                    skip -= batch.num_rows
                    continue
                batch, skip = batch.slice(skip), 0
            yield batch.select(wanted)
