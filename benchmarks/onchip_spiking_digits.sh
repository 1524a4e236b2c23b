#!/usr/bin/env bash
# Embedded learning of a spiking net on digits, on Lava's simulated Loihi 2 (run by hand,
# on an idle machine): the digits_spiking net (IF neurons, T = 16, li read-out) learned
# from scratch on the chip, in fixed point (lr 0.1) and floating point (lr 0.05), 5 epochs;
# trials per second of each.
#
#   bash benchmarks/onchip_spiking_digits.sh
#
# Results (learn_summary.json, reward.png, the printed lines, the commands) go to
# benchmarks/results/onchip_spiking/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
results=benchmarks/results/onchip_spiking
runs=benchmarks/runs/onchip_spiking
mkdir -p "$results"
rm -rf "$runs"  # benchmarks/runs/onchip_spiking is this script's own scratch folder
echo "bash benchmarks/onchip_spiking_digits.sh $*  # $(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$results/commands.txt"
np=.venv/bin/neuroprop
$np train --config configs/digits_spiking.yaml --run-dir "$runs/spiking" --no-progress
$np export --target lava "$runs/spiking"
for mode in fixed float; do
    if [ "$mode" = fixed ]; then extra="--lr 0.1"; else extra="--lr 0.05 --float"; fi
    name="scratch_$mode"
    echo "neuroprop learn --target lava $runs/spiking/export-lava --scratch 0.05 --epochs 5 $extra --out $runs/$name" >> "$results/commands.txt"
    # shellcheck disable=SC2086
    $np learn --target lava "$runs/spiking/export-lava" --scratch 0.05 --epochs 5 $extra \
        --out "$runs/$name" | tee "$results/$name.txt"
    cp "$runs/$name/learn_summary.json" "$results/$name.json"
    cp "$runs/$name/reward.png" "$results/$name.png"
done
