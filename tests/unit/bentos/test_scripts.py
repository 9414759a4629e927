"""The on-demand scripts: they parse, and the GPU check stops at once without a GPU."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "script", ["smoke_container.sh", "gpu_check.sh", "observability/install_promtool.sh"]
)
def test_script_parses(script: str) -> None:
    subprocess.run(["bash", "-n", str(ROOT / "bentos" / script)], check=True, timeout=30)


def test_gpu_check_fails_fast_without_nvidia_smi(tmp_path: Path) -> None:
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has nvidia-smi: the check would really run")
    env = {**os.environ, "PATH": "/usr/bin:/bin"}

    result = subprocess.run(
        ["bash", str(ROOT / "bentos" / "gpu_check.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 2
    assert "nvidia-smi not found" in result.stderr
