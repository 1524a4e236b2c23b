#!/usr/bin/env bash
# The whole test suite: sets up both environments if needed, then lints and
# runs the torch-side tests in .venv and the hardware tests in .venv-lava.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
export PYTHONHASHSEED=0 OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
.venv/bin/ruff check neuroprop hardware tests benchmarks
status=0
.venv/bin/python -m pytest -q tests/neuroprop "$@" || status=$?
.venv-lava/bin/python -m pytest -q tests/hardware "$@" || status=$?
exit $status
