"""Input files: chunks of exactly chunk_rows rows whatever the row groups (so a resumed job
skips exactly what it committed), CSV typed by the schema, and sources only where allowed."""

import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.batch.files import InputFile, allowed_source, chunks, read_schema
from services.batch.results import merge_parts, result_schema, write_part
from services.errors import ValidationFailed
from tests.utils.schemas import ranged_schema

SCHEMA = ranged_schema()
COLUMNS = ["size", "count", "flag", "color"]


def parquet_file(path: Path, rows: int, row_group: int) -> InputFile:
    table = pa.table(
        {
            "size": [float(i) for i in range(rows)],
            "count": [i % 10 for i in range(rows)],
            "flag": [i % 2 == 0 for i in range(rows)],
            "color": ["red"] * rows,
            "note": ["ignored"] * rows,
        }
    )
    pq.write_table(table, path, row_group_size=row_group)
    return InputFile.at(str(path))


@pytest.mark.parametrize(("rows", "row_group", "chunk"), [(1000, 7, 64), (100, 1000, 33)])
def test_chunks_have_exactly_chunk_rows_and_resume_at_a_chunk_boundary(
    tmp_path: Path, rows: int, row_group: int, chunk: int
) -> None:
    source = parquet_file(tmp_path / "in.parquet", rows, row_group)
    assert source.format == "parquet"

    every = list(chunks(source, SCHEMA, chunk_rows=chunk, columns=COLUMNS))
    resumed = list(chunks(source, SCHEMA, chunk_rows=chunk, columns=COLUMNS, start=2))

    assert [b.num_rows for b in every[:-1]] == [chunk] * (len(every) - 1)
    assert sum(b.num_rows for b in every) == rows
    assert every[0].schema.names == COLUMNS
    assert [b.column("size").to_pylist() for b in resumed] == [
        b.column("size").to_pylist() for b in every[2:]
    ]


def test_csv_columns_are_typed_by_the_schema_and_empty_cells_are_missing(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("size,count,flag,color,note\n1,2,true,red,x\n2.5,,false,,y\n")
    source = InputFile.at(str(path))

    columns, total = read_schema(source, SCHEMA)
    (batch,) = chunks(source, SCHEMA, chunk_rows=10, columns=COLUMNS)

    assert source.format == "csv"
    assert total is None
    assert columns.field("size").type == pa.float64()
    assert columns.field("flag").type == pa.bool_()
    assert batch.to_pylist() == [
        {"size": 1.0, "count": 2.0, "flag": True, "color": "red"},
        {"size": 2.5, "count": None, "flag": False, "color": None},
    ]


def test_csv_reads_only_features_and_the_id_column_and_only_empty_cells_are_missing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "in.csv"
    # `note` is empty for a whole block, then text: a guessed type would break mid-file.
    rows = ["1,2,true,red,,k1"] * 70_000 + ["nan,3,false,NA,hello,k2"]
    path.write_text("size,count,flag,color,note,key\n" + "\n".join(rows) + "\n")
    source = InputFile.at(str(path))

    columns, _ = read_schema(source, SCHEMA, id_column="key")
    batches = list(chunks(source, SCHEMA, chunk_rows=65_536, columns=[*COLUMNS, "key"]))

    assert columns.names == ["size", "count", "flag", "color", "note", "key"]
    assert columns.field("key").type == pa.string()
    last = batches[-1].to_pylist()[-1]
    assert math.isnan(last["size"])
    assert last["color"] == "NA"
    assert last["key"] == "k2"


def test_a_csv_with_only_a_header_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("size,count,flag,color\n")
    source = InputFile.at(str(path))

    columns, _ = read_schema(source, SCHEMA)

    assert columns.names == COLUMNS
    assert list(chunks(source, SCHEMA, chunk_rows=10, columns=COLUMNS)) == []


def test_a_source_outside_the_allowed_directories_is_refused(tmp_path: Path) -> None:
    allowed = tmp_path / "shared"
    allowed.mkdir()
    inside = allowed / "rows.parquet"
    inside.write_bytes(b"PAR1")
    outside = tmp_path / "secret.parquet"
    outside.write_bytes(b"PAR1")
    (allowed / "link.parquet").symlink_to(outside)

    assert allowed_source(str(inside), (str(allowed),)) == str(inside.resolve())
    for wanted in (
        str(outside),
        str(allowed / ".." / "secret.parquet"),
        str(allowed / "link.parquet"),
        str(allowed / "missing.parquet"),
        str(allowed),
    ):
        with pytest.raises(ValidationFailed) as refused:
            allowed_source(wanted, (str(allowed),))
        assert refused.value.details["errors"][0]["code"] == "source_not_allowed"
    for remote in (
        "s3://bucket/other/rows.parquet",
        "s3://bucket/data/%2E%2E/other/rows.parquet",
        "s3://bucket/data/rows.parquet?endpoint_override=169.254.169.254:80&scheme=http",
        "s3://other-bucket/data/rows.parquet",
        "gs://bucket/data/rows.parquet",
    ):
        with pytest.raises(ValidationFailed):
            allowed_source(remote, ("s3://bucket/data",))
    assert allowed_source("s3://bucket/data/rows.parquet", ("s3://bucket/data",))


def test_parts_merge_into_one_result_in_chunk_order(tmp_path: Path) -> None:
    schema = result_schema(("no", "yes"))
    for chunk in (1, 0):
        batch = pa.RecordBatch.from_pylist(
            [
                {
                    "row": chunk * 2 + i,
                    "model_version": "v1",
                    "label": "no",
                    "score": 0.75,
                    "probability_no": 0.75,
                    "probability_yes": 0.25,
                    "out_of_range": None,
                    "error": None,
                    "prediction_id": None,
                }
                for i in range(2)
            ],
            schema=schema,
        )
        digest = write_part(tmp_path, chunk, batch)
        assert len(digest) == 64

    result = merge_parts(tmp_path, 2, schema)
    again = merge_parts(tmp_path, 2, schema)  # a stop after the merge, before it was recorded

    assert again == result
    assert pq.read_table(result).column("row").to_pylist() == [0, 1, 2, 3]
    assert not list((tmp_path / "parts").iterdir())
