#!/usr/bin/env bash
# The main job on the embedded default (sklearn's 8x8 digits): set up both
# environments, train BrainProp, export to Loihi fixed point, run the export on
# Lava's Loihi simulator, and print what each stage scored.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
run="runs/demo-$(date +%Y%m%d-%H%M%S)"
echo "== 1/3 train (BrainProp, digits) -> $run"
.venv/bin/neuroprop train --run-dir "$run" --no-progress "$@"
echo "== 2/3 export --target lava"
.venv/bin/neuroprop export --target lava "$run"
echo "== 3/3 run on Lava's Loihi simulator (fixed point)"
.venv/bin/neuroprop run --target lava "$run/export-lava"
