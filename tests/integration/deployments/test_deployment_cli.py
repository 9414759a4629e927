"""`python -m services.cli deployment show|set|rollback`: the database, the API's validation."""

import json
from typing import Any

import pytest

from services.cli import main
from tests.utils.service_app import settings_env

pytestmark = pytest.mark.integration


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = main(["deployment", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else None, err


def test_the_cli_sets_shows_and_rolls_back_with_the_apis_validation(
    sqlite_db: str,
    cancer_versions: tuple[str, str],
    incompatible_version: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    older, newer = cancer_versions
    a, b = older.split(":")[1], newer.split(":")[1]
    env = {"DB_URL": sqlite_db, "SERVING_MODELS": f"{older},{newer},{incompatible_version}"}
    with settings_env(env):
        code, changed, _ = _run(
            capsys,
            "set",
            "cancer-rf",
            "--production",
            a,
            "--canary",
            b,
            "--weight",
            "0.2",
            "--actor",
            "ops:bob",
        )
        _, shown, _ = _run(capsys, "show", "cancer-rf")
        rolled, rolled_back, _ = _run(capsys, "rollback", "cancer-rf")
        missing, _, missing_err = _run(capsys, "set", "cancer-rf", "--production", "v404")
        other, _, other_err = _run(
            capsys, "set", "cancer-rf", "--production", a, "--shadow", "tiny-schema"
        )
        heavy, _, heavy_err = _run(
            capsys, "set", "cancer-rf", "--production", a, "--canary", b, "--weight", "2"
        )
        unknown, _, _ = _run(capsys, "show", "no-such-model")

    assert code == 0
    assert changed["revision"] == 2
    assert changed["canary"] == {"version": b, "weight": 0.2, "sticky": "request"}
    assert changed["updated_by"] == "ops:bob"
    assert shown["deployment"]["production"] == a
    stages = {v["version"]: v["stage"] for v in shown["versions"]}
    # Revision 1 records the default: the newest served version, tiny-schema, was production.
    assert stages == {a: "production", b: "canary", "tiny-schema": "archived"}
    assert [r["action"] for r in shown["history"]] == ["set", "initial"]
    assert rolled == 0
    assert rolled_back["production"] == "tiny-schema"
    assert (missing, other, heavy, unknown) == (3, 3, 2, 4)
    assert "SERVING_MODELS" in missing_err
    assert "does not take the same inputs" in other_err
    assert "weight" in heavy_err
