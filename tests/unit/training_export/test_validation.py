import numpy as np
import pandas as pd
import pytest

from tests.utils.factories import tiny_frame, tiny_schema
from training_export.errors import DataValidationError
from training_export.validation import FrameChecker, check_columns, label_index


def _check(frame: pd.DataFrame, classes: tuple[int, ...] | None = (0, 1)) -> None:
    checker = FrameChecker(schema=tiny_schema(), target="label", classes=classes, what="data")
    checker.check(frame)
    checker.finish()


def _problems(frame: pd.DataFrame) -> str:
    with pytest.raises(DataValidationError) as caught:
        _check(frame)
    return str(caught.value)


def test_a_fitting_frame_passes() -> None:
    _check(tiny_frame())


def test_missing_and_extra_columns_are_named() -> None:
    frame = tiny_frame().drop(columns=["count"]).assign(extra=1)

    with pytest.raises(DataValidationError) as caught:
        check_columns(list(frame.columns), tiny_schema(), "label", what="data")

    assert "missing column 'count'" in str(caught.value)
    assert "unexpected column 'extra'" in str(caught.value)


def test_text_in_a_float_column_is_refused() -> None:
    assert "'size': expected float, got object" in _problems(tiny_frame().assign(size="big"))


def test_fractional_values_in_an_int_column_are_refused() -> None:
    assert "'count': expected int, got fractional" in _problems(tiny_frame().assign(count=1.5))


def test_integral_floats_are_accepted_as_int() -> None:
    _check(tiny_frame().assign(count=3.0))


def test_bool_column_refuses_values_other_than_zero_and_one() -> None:
    assert "'flag': expected bool" in _problems(tiny_frame().assign(flag=2))


def test_numbers_in_a_category_column_are_refused() -> None:
    assert "'color': expected text categories" in _problems(tiny_frame().assign(color=1))


def test_unknown_category_is_refused() -> None:
    assert "unknown categories ['purple']" in _problems(tiny_frame().assign(color="purple"))


def test_nan_is_refused_where_the_schema_forbids_it() -> None:
    frame = tiny_frame()
    frame.loc[5, "size"] = np.nan

    assert (
        "'size' has missing values and the schema forbids them: 1 rows, first row 5"
        in _problems(frame)
    )


def test_infinity_is_refused() -> None:
    frame = tiny_frame()
    frame.loc[3, "size"] = np.inf

    assert "'size' has infinite values" in _problems(frame)


def test_unknown_label_is_refused() -> None:
    assert "labels outside the model's classes" in _problems(tiny_frame().assign(label=7))


def test_empty_data_is_refused() -> None:
    with pytest.raises(DataValidationError, match="no rows"):
        _check(tiny_frame().iloc[:0])


def test_label_index_matches_labels_across_types() -> None:
    assert label_index(pd.Series([1.0, 0, "1"]), (0, 1)).tolist() == [1, 0, 1]
