from pathlib import Path

import pandas as pd
import pytest

from tests.utils.factories import tiny_frame, write_table
from training_export.errors import ExportError
from training_export.tables import open_table


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_batches_cover_every_row_with_a_running_index(tmp_path: Path, suffix: str) -> None:
    frame = tiny_frame(rows=25)
    table = open_table(write_table(tmp_path / f"data{suffix}", frame), batch_rows=10)

    batches = list(table.batches())

    assert [len(batch) for batch in batches] == [10, 10, 5]
    assert list(batches[2].index) == list(range(20, 25))
    assert table.columns == list(frame.columns)
    pd.testing.assert_frame_equal(pd.concat(batches), frame, check_dtype=False)


def test_unknown_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"\.parquet or \.csv"):
        open_table(tmp_path / "data.xlsx", batch_rows=10)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="no such file"):
        open_table(tmp_path / "absent.parquet", batch_rows=10)


def test_corrupt_parquet_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 but not really")

    with pytest.raises(ExportError, match="cannot be read as parquet"):
        open_table(path, batch_rows=10)
