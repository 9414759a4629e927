#!/usr/bin/env bash
# Put promtool (from Debian's `prometheus` package) into a virtual environment's bin/:
#   bash bentos/observability/install_promtool.sh .venv
# The package is downloaded and only its promtool binary unpacked, so no Prometheus server is
# installed or started. Idempotent: does nothing when the binary is already there. On a fresh
# machine the package lists may be empty: then it runs `apt-get update` (as root).
set -euo pipefail

venv=${1:?usage: install_promtool.sh VENV}
dest="$venv/bin/promtool"
if [ -x "$dest" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
  echo "install_promtool: needs apt-get and dpkg-deb (Debian or Ubuntu)" >&2
  exit 1
fi
dest="$(cd "$(dirname "$dest")" && pwd)/promtool"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download -qq prometheus 2>/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "install_promtool: apt-get download prometheus failed; run 'apt-get update' as root" >&2
    exit 1
  fi
  apt-get update -qq
  apt-get download -qq prometheus
fi
dpkg-deb --fsys-tarfile prometheus_*.deb | tar -x ./usr/bin/promtool
install -m 0755 usr/bin/promtool "$dest"
echo "installed $("$dest" --version 2>&1 | head -n 1) as $dest"
