"""Class probabilities become label, score and a probability per class."""

import pytest

from services.pipeline.postprocess import prediction_outputs


def test_label_and_score_are_the_most_likely_class() -> None:
    (output,) = prediction_outputs([[0.2, 0.7, 0.1]], ["cat", "dog", "eel"])

    assert output == {
        "label": "dog",
        "score": 0.7,
        "probabilities": {"cat": 0.2, "dog": 0.7, "eel": 0.1},
    }


def test_integer_labels_stay_integers_and_key_probabilities_as_strings() -> None:
    (output,) = prediction_outputs([[0.25, 0.75]], [0, 1])

    assert output["label"] == 1
    assert isinstance(output["label"], int)
    assert output["probabilities"] == {"0": 0.25, "1": 0.75}


def test_one_output_per_row_in_row_order() -> None:
    outputs = prediction_outputs([[0.9, 0.1], [0.4, 0.6], [0.5, 0.5]], [0, 1])

    assert [output["label"] for output in outputs] == [0, 1, 0]
    assert [output["score"] for output in outputs] == [0.9, 0.6, 0.5]


def test_a_tie_goes_to_the_first_class_in_output_order() -> None:
    (output,) = prediction_outputs([[0.4, 0.4, 0.2]], ["b", "a", "c"])

    assert output["label"] == "b"


def test_probabilities_are_passed_on_exactly() -> None:
    probability = 0.1 + 0.2  # 0.30000000000000004: no rounding on the way out

    (output,) = prediction_outputs([[probability, 1 - probability]], [0, 1])

    assert output["probabilities"]["0"] == probability
    assert output["score"] == 1 - probability


def test_no_rows_give_no_outputs() -> None:
    assert prediction_outputs([], [0, 1]) == []


def test_a_row_wider_than_the_classes_is_an_error_not_truncated() -> None:
    with pytest.raises(ValueError, match="zip"):
        prediction_outputs([[0.7, 0.2, 0.1]], [0, 1])
