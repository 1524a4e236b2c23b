#!/usr/bin/env bash
# The main job on the embedded default (sklearn's 8x8 digits): set up both
# environments, train BrainProp, export to Loihi fixed point, run the export on
# Lava's Loihi simulator, and print what each stage scored: float, spiking (the net
# converted to LIF neurons at T = 8, 16, 32), integer model and Lava, on the same samples.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
run="runs/demo-$(date +%Y%m%d-%H%M%S)"
echo "== 1/4 train (BrainProp, digits) -> $run"
.venv/bin/neuroprop train --run-dir "$run" --no-progress "$@"
echo "== 2/4 export --target lava"
.venv/bin/neuroprop export --target lava "$run"
echo "== 3/4 run on Lava's Loihi simulator (fixed point)"
.venv/bin/neuroprop run --target lava "$run/export-lava"
echo "== 4/4 every stage on the same test samples: float, spiking, integer model, Lava"
.venv/bin/neuroprop compare "$run" --timesteps 8,16,32
