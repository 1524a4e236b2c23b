#!/usr/bin/env bash
# Embedded learning on the embedded default (sklearn's 8x8 digits): BrainProp trains a
# net in PyTorch on digits 0-4 only, exports it to Loihi fixed point, and the net then
# learns digits 5-9 on Lava's simulated Loihi 2 from reward alone (trials of all ten
# digits; the label only decides the reward). Prints and plots accuracy before/after.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
run="runs/demo-onchip-$(date +%Y%m%d-%H%M%S)"
echo "== 1/3 train in PyTorch on digits 0-4 only -> $run"
.venv/bin/neuroprop train --run-dir "$run" --no-progress "dataset.classes=[0,1,2,3,4]" "$@"
echo "== 2/3 export --target lava"
.venv/bin/neuroprop export --target lava "$run"
echo "== 3/3 learn on Lava's Loihi simulator (fixed point), 3 passes over the training digits"
.venv/bin/neuroprop learn --target lava "$run/export-lava" --epochs 3 --lr 0.05 --out "$run/onchip"
echo "reward rate and accuracy: $run/onchip/reward.png; every trial: $run/onchip/trials.jsonl"
