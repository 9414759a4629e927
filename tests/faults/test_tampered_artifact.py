"""A tampered model refuses the whole server's start, visibly, before any traffic.

On the old code the runner caught the tampering, exited, and was restarted every 10 s forever
while the gateway served: requests for that model hung 10 s and got 504. Now `bentoml serve`
exits non-zero with one log line naming the model, its tag and the reason, and its port never
accepts a connection. The tampering happens in a copy of the model store, never the test's own.
"""

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import bentoml
import pytest
import yaml

from services.runners.verify import EXIT_REFUSED
from tests.utils.server import run_until_exit
from tests.utils.service_app import serving_env

pytestmark = [pytest.mark.faults, pytest.mark.e2e]


def _flip_a_byte(model_dir: Path) -> None:
    info = yaml.safe_load((model_dir / "model.yaml").read_text(encoding="utf-8"))
    path = model_dir / info["metadata"]["model_file"]
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle] ^= 0x01
    path.write_bytes(bytes(data))


def _edit_a_golden_value(model_dir: Path) -> None:
    path = model_dir / "model.yaml"
    info = yaml.safe_load(path.read_text(encoding="utf-8"))
    outputs = info["metadata"]["golden_examples"]["outputs"]
    outputs[0] = [min(1.0, value + 0.01) if i == 0 else value for i, value in enumerate(outputs[0])]
    path.write_text(yaml.safe_dump(info, sort_keys=False), encoding="utf-8")


@pytest.mark.parametrize(
    ("model", "tamper"),
    [("fraud-xgb", _flip_a_byte), ("cancer-rf", _edit_a_golden_value)],
    ids=["flipped-byte", "edited-golden-value"],
)
def test_a_tampered_model_stops_the_server_before_it_accepts_traffic(
    model: str,
    tamper: Callable[[Path], None],
    tmp_path: Path,
    reference_models: dict[str, str],
) -> None:
    home = tmp_path / "bentoml"
    for tag in reference_models.values():
        stored = bentoml.models.get(tag)
        shutil.copytree(stored.path, home / "models" / stored.tag.name / stored.tag.version)
    tag = reference_models[model]
    tamper(home / "models" / model / tag.split(":")[1])
    env = serving_env(sorted(reference_models.values()), BENTOML_HOME=str(home))

    exited = run_until_exit(env=env, timeout_s=180)

    assert exited.returncode == EXIT_REFUSED, exited.log[-3000:]
    assert not exited.port_answered
    refusals = [line for line in exited.log.splitlines() if "refusing to start" in line]
    assert len(refusals) == 1, refusals
    line = json.loads(refusals[0])
    assert line["level"] == "critical"
    assert (line["model"], line["tag"], line["reason"]) == (model, tag, "artifact_mismatch")
    assert f"model {model}, tag {tag}: artifact_mismatch" in line["message"]
