"""Read Parquet or CSV data sets in record batches, so large files never sit whole in memory."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from training_export.errors import ExportError

FrameSource = Callable[[], Iterator[pd.DataFrame]]
SUFFIXES = (".parquet", ".pq", ".csv")


@dataclass(frozen=True)
class Table:
    """A data file: its column names (read from the header only) and a batch reader."""

    path: Path
    columns: list[str]
    batch_rows: int

    def batches(self) -> Iterator[pd.DataFrame]:
        """Record batches as DataFrames, with a running row index across batches."""
        offset = 0
        for frame in self._raw_batches():
            frame.index = pd.RangeIndex(offset, offset + len(frame))
            offset += len(frame)
            yield frame

    def _raw_batches(self) -> Iterator[pd.DataFrame]:
        if self.path.suffix.lower() == ".csv":
            yield from pd.read_csv(self.path, chunksize=self.batch_rows)
            return
        parquet = pq.ParquetFile(self.path)
        for batch in parquet.iter_batches(batch_size=self.batch_rows):
            yield batch.to_pandas()


def open_table(path: Path, *, batch_rows: int) -> Table:
    """Open a Parquet or CSV file, reading only its header; ExportError when that fails."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ExportError(f"{path}: expected a .parquet or .csv file")
    if not path.is_file():
        raise ExportError(f"{path}: no such file")
    try:
        if suffix == ".csv":
            columns = list(pd.read_csv(path, nrows=0).columns)
        else:
            columns = list(pq.ParquetFile(path).schema_arrow.names)
    except Exception as exc:
        raise ExportError(f"{path}: cannot be read as {suffix[1:]} ({type(exc).__name__})") from exc
    return Table(path=path, columns=[str(name) for name in columns], batch_rows=batch_rows)


def frame_source(frame: pd.DataFrame, *, batch_rows: int) -> FrameSource:
    """Present an in-memory frame as the same batch source a file gives."""

    def batches() -> Iterator[pd.DataFrame]:
        for start in range(0, len(frame), batch_rows):
            yield frame.iloc[start : start + batch_rows]

    return batches
