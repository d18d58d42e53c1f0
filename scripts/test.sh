#!/usr/bin/env bash
# Install everything, lint, run the test suite. This is the README's test command and CI's.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check .
MUJOCO_GL=egl .venv/bin/python -m pytest -q --durations=30 "$@"
