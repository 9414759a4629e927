import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.utils.factories import tiny_frame, tiny_schema, tiny_schema_document, write_schema
from training_export.errors import ExportError
from training_export.schema_inference import RangeObserver, infer_schema, read_schema_file


def test_infer_schema_types_each_column_and_keeps_order() -> None:
    schema = infer_schema(tiny_frame(), target="label")

    assert schema.names == ["size", "count", "flag", "color"]
    assert [f.dtype for f in schema.features] == ["float", "int", "bool", "category"]
    assert schema.features[3].categories == ("blue", "green", "red")


def test_infer_schema_records_the_observed_range() -> None:
    frame = tiny_frame()

    size = infer_schema(frame, target="label").features[0]

    assert (size.minimum, size.maximum) == (frame["size"].min(), frame["size"].max())


def test_range_observer_spans_every_batch() -> None:
    observer = RangeObserver(tiny_schema().features)
    observer.update(pd.DataFrame({"size": [1.0, np.nan], "count": [5, 6]}))
    observer.update(pd.DataFrame({"size": [-2.0, 0.0], "count": [9, 1]}))

    size, count = observer.apply(tiny_schema().features).features[:2]

    assert (size.minimum, size.maximum) == (-2.0, 1.0)
    assert (count.minimum, count.maximum) == (1.0, 9.0)


def test_schema_file_round_trips(tmp_path: Path) -> None:
    parsed = read_schema_file(write_schema(tmp_path / "schema.json"))

    assert parsed.target == "label"
    assert [f.name for f in parsed.features] == ["size", "count", "flag", "color"]


def test_schema_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    path.write_text("{not json", encoding="utf-8")

    with pytest.raises(ExportError, match="not valid JSON"):
        read_schema_file(path)


def test_schema_file_errors_name_the_field(tmp_path: Path) -> None:
    document = tiny_schema_document()
    document["features"][3].pop("categories")
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(document), encoding="utf-8")

    with pytest.raises(ExportError, match=r"features\.3"):
        read_schema_file(path)


def test_missing_schema_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="no such file"):
        read_schema_file(tmp_path / "absent.json")
