"""How many gateway workers start, and which frameworks predict inside them."""

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.settings import ServingSettings, available_cpus


def _cgroup_v2(tmp_path: Path, line: str) -> Path:
    (tmp_path / "cpu.max").write_text(line + "\n")
    return tmp_path


def _cgroup_v1(tmp_path: Path, quota_us: int, period_us: int) -> Path:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(f"{quota_us}\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(f"{period_us}\n")
    return tmp_path


@pytest.fixture
def cores(monkeypatch: pytest.MonkeyPatch) -> int:
    """Pretend this process may run on 16 cores."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    return 16


def test_without_a_cgroup_limit_every_core_counts(cores: int, tmp_path: Path) -> None:
    assert available_cpus(tmp_path) == cores
    assert available_cpus(_cgroup_v2(tmp_path, "max 100000")) == cores


@pytest.mark.parametrize(("line", "expected"), [("200000 100000", 2), ("150000 100000", 2)])
def test_a_cgroup_v2_limit_caps_the_count_rounded_up(
    cores: int, tmp_path: Path, line: str, expected: int
) -> None:
    assert available_cpus(_cgroup_v2(tmp_path, line)) == expected


def test_a_cgroup_v1_quota_caps_the_count(cores: int, tmp_path: Path) -> None:
    assert available_cpus(_cgroup_v1(tmp_path, 400_000, 100_000)) == 4


def test_a_cgroup_v1_quota_of_minus_one_is_no_limit(cores: int, tmp_path: Path) -> None:
    assert available_cpus(_cgroup_v1(tmp_path, -1, 100_000)) == cores


def test_a_fraction_of_a_cpu_still_gets_one_worker(cores: int, tmp_path: Path) -> None:
    assert available_cpus(_cgroup_v2(tmp_path, "50000 100000")) == 1


def test_auto_workers_follow_the_machine_and_a_number_is_taken_as_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("services.settings.available_cpus", lambda: 6)

    assert ServingSettings().gateway_worker_count == 6
    assert ServingSettings(gateway_workers="auto").gateway_worker_count == 6
    monkeypatch.setenv("SERVING_GATEWAY_WORKERS", "3")
    assert ServingSettings().gateway_worker_count == 3


@pytest.mark.parametrize("value", ["0", "33", "many"])
def test_a_worker_count_outside_1_to_32_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SERVING_GATEWAY_WORKERS", value)

    with pytest.raises(ValidationError, match="gateway_workers"):
        ServingSettings()


def test_scikit_learn_and_xgboost_predict_in_process_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ServingSettings().inprocess == ("sklearn", "xgboost")
    monkeypatch.setenv("SERVING_INPROCESS", "")
    assert ServingSettings().inprocess == ()
    monkeypatch.setenv("SERVING_INPROCESS", " xgboost ")
    assert ServingSettings().inprocess == ("xgboost",)


def test_pytorch_cannot_be_moved_into_the_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVING_INPROCESS", "sklearn,torch")

    with pytest.raises(ValidationError, match="inprocess"):
        ServingSettings()
