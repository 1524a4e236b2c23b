#!/usr/bin/env bash
# The foundation benchmark: full MNIST with the paper's protocol and the reference code's
# settings (configs/mnist_*_reference.yaml),
# BrainProp and EBP, one seed each, to early stopping or the epoch cap.
#
#   bash benchmarks/mnist_foundation.sh DATA_DIR MAX_EPOCHS NET [NET ...]
#   e.g. bash benchmarks/mnist_foundation.sh ../shared/data 100 dense conv
#
# Runs go to benchmarks/runs/ (ignored by git); each run's summary.json and
# metrics.jsonl, the learning curves, the commands run and the table go to
# benchmarks/results/mnist/.
# Run it on an otherwise idle machine: the seconds per epoch are part of the result.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
data_dir=$1 max_epochs=$2
shift 2
results=benchmarks/results/mnist
mkdir -p "$results" benchmarks/runs
echo "bash benchmarks/mnist_foundation.sh $data_dir $max_epochs $*" >> "$results/commands.txt"
for net in "$@"; do
    for rule in brainprop ebp; do
        run="benchmarks/runs/mnist_${net}_${rule}"
        resume=()
        [ -f "$run/checkpoint.pt" ] && resume=(--resume)
        .venv/bin/neuroprop train --config "configs/mnist_${net}_reference.yaml" --data-dir "$data_dir" \
            --run-dir "$run" --no-progress "${resume[@]}" \
            "rule=$rule" "training.max_epochs=$max_epochs"
        mkdir -p "$results/${net}_${rule}"
        cp "$run/summary.json" "$run/metrics.jsonl" "$results/${net}_${rule}/"
    done
    .venv/bin/neuroprop plot "benchmarks/runs/mnist_${net}_brainprop" \
        "benchmarks/runs/mnist_${net}_ebp" --out "$results/${net}_curves.png"
done
.venv/bin/python benchmarks/collect.py "$results" > "$results/README.md"
cat "$results/README.md"
