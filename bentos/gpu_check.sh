#!/usr/bin/env bash
# GPU check for a machine with an NVIDIA GPU: serves the PyTorch runner on CUDA, checks the
# golden outputs within SERVING_GOLDEN_TOLERANCE (default 1e-5, absolute, on probabilities)
# and prints batched throughput against the CPU. Details: bentos/gpu_check.py.
#
#   bentos/gpu_check.sh [--rows 64] [--clients 16] [--seconds 15]
#
# Needs the NVIDIA driver (nvidia-smi) and the CUDA build of PyTorch in $PY's environment:
#   .venv/bin/pip install "$(grep '^torch==' bentos/requirements-gpu.txt)"
# Exit status: 0 passed, 1 a golden check failed, 2 no usable GPU.
set -Eeuo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu_check: nvidia-smi not found: this check needs a machine with an NVIDIA GPU and its" \
    "driver; it has not run here" >&2
  exit 2
fi
if ! nvidia-smi -L; then
  echo "gpu_check: nvidia-smi lists no GPU" >&2
  exit 2
fi
cd "$ROOT"
exec "$PY" bentos/gpu_check.py "$@"
