#!/usr/bin/env bash
# Install the project and its pinned dependencies.
# Used by the README quick start, .ci/run, the Dockerfile and the conda recipe alike.
#   bash scripts/install.sh            -> creates/updates .venv in the repo root
#   bash scripts/install.sh --in-place -> installs into the active Python (Docker, conda)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ "${1:-}" != "--in-place" ]; then
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  PY=.venv/bin/python
fi
"$PY" -m pip install --quiet --upgrade pip
# torch first, pinned exactly, so the range in pyproject.toml installs nothing more.
"$PY" -m pip install --quiet "torch==${TORCH_VERSION:-2.13.0}"
"$PY" -m pip install --quiet -e ".[dev]"
echo "installed into $("$PY" -c 'import sys; print(sys.prefix)')"
