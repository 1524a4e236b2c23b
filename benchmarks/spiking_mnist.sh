#!/usr/bin/env bash
# Spiking MNIST: BrainProp (eligibility traces) and BPTT on the same spiking net and T
# (configs/mnist_<net>_spiking.yaml), one seed each, to early stopping or the epoch caps.
#
#   bash benchmarks/spiking_mnist.sh DATA_DIR NET BRAINPROP_MAX_EPOCHS BPTT_MAX_EPOCHS
#   e.g. bash benchmarks/spiking_mnist.sh ../shared/data dense 50 10
#
# Runs go to benchmarks/runs/ (ignored by git) and are resumed when started again (a
# larger cap continues them); each run's summary.json and metrics.jsonl, the learning
# curves, the commands run and the table go to benchmarks/results/spiking_mnist/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
data_dir=$1 net=$2
declare -A caps=([brainprop]=$3 [bptt]=$4)
results=benchmarks/results/spiking_mnist
mkdir -p "$results" benchmarks/runs
echo "bash benchmarks/spiking_mnist.sh $*" >> "$results/commands.txt"
for rule in brainprop bptt; do
    run="benchmarks/runs/spiking_mnist_${net}_${rule}"
    resume=()
    [ -f "$run/checkpoint.pt" ] && resume=(--resume)
    .venv/bin/neuroprop train --config "configs/mnist_${net}_spiking.yaml" --data-dir "$data_dir" \
        --run-dir "$run" --no-progress "${resume[@]}" \
        "rule=$rule" "training.max_epochs=${caps[$rule]}"
    mkdir -p "$results/${net}_${rule}"
    cp "$run/summary.json" "$run/metrics.jsonl" "$results/${net}_${rule}/"
done
.venv/bin/neuroprop plot "benchmarks/runs/spiking_mnist_${net}_brainprop" \
    "benchmarks/runs/spiking_mnist_${net}_bptt" --out "$results/${net}_curves.png"
.venv/bin/python benchmarks/collect.py "$results" > "$results/README.md"
cat "$results/README.md"
