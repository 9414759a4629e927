"""The committed golden fixture: exact for tree models, within a stated tolerance for float32
networks, whose kernels differ from one CPU to the next."""

import copy
import json
from typing import Any

from tests.utils.golden_fixtures import FIXTURES, FLOAT_TOLERANCE, fixture_differences


def _fixture(recipe: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / f"{recipe}.json").read_text("utf-8"))
    return document


def _nudged(document: dict[str, Any], delta: float) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    changed["golden_examples"]["outputs"][0][0] += delta
    return changed


def test_a_float_network_within_the_tolerance_matches() -> None:
    expected = _fixture("digits-mlp")
    actual = _nudged(expected, FLOAT_TOLERANCE / 2)
    actual["metrics"]["log_loss"] += FLOAT_TOLERANCE / 2

    assert fixture_differences("torch", actual, expected) == []


def test_a_float_network_beyond_the_tolerance_does_not() -> None:
    expected = _fixture("digits-mlp")

    assert fixture_differences("torch", _nudged(expected, FLOAT_TOLERANCE * 2), expected) == [
        "golden outputs differ by up to 2e-06"
    ]


def test_a_metric_beyond_the_tolerance_is_named() -> None:
    expected = _fixture("digits-mlp")
    actual = copy.deepcopy(expected)
    actual["metrics"]["log_loss"] += FLOAT_TOLERANCE * 2

    assert fixture_differences("torch", actual, expected) == [
        f"metric log_loss differs beyond {FLOAT_TOLERANCE:g}"
    ]


def test_a_changed_predicted_class_fails_even_within_the_tolerance() -> None:
    expected = _fixture("digits-mlp")
    width = len(expected["golden_examples"]["outputs"][0])
    near_tie = [0.5 + 1e-7, 0.5 - 1e-7] + [0.0] * (width - 2)
    expected["golden_examples"]["outputs"][0] = near_tie
    actual = copy.deepcopy(expected)
    actual["golden_examples"]["outputs"][0] = [0.5 - 1e-7, 0.5 + 1e-7] + [0.0] * (width - 2)

    assert fixture_differences("torch", actual, expected) == [
        "a golden row's predicted class differs"
    ]


def test_other_keys_of_a_float_network_compare_exactly() -> None:
    expected = _fixture("digits-mlp")
    actual = copy.deepcopy(expected)
    actual["hyperparameters"]["epochs"] = -1

    assert fixture_differences("torch", actual, expected) == ["hyperparameters differs"]


def test_tree_models_compare_exactly() -> None:
    expected = _fixture("fraud-xgb")

    assert fixture_differences("xgboost", _nudged(expected, 1e-15), expected) != []
    assert fixture_differences("xgboost", copy.deepcopy(expected), expected) == []
