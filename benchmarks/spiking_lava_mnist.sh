#!/usr/bin/env bash
# The spiking MNIST net of benchmarks/spiking_mnist.sh (which must have run first), exported
# to Loihi fixed point (weights, thresholds and state on one scale per layer) and run on
# Lava's simulator over the full 10,000-sample MNIST test set, against the float spiking
# net (the export's float weights) and neuroprop's integer model.
#
#   bash benchmarks/spiking_lava_mnist.sh DATA_DIR NET [DENSE_MODEL]
#   e.g. bash benchmarks/spiking_lava_mnist.sh ../shared/data dense blas
#
# Results (lava_summary.json, the resource report, the commands) go to
# benchmarks/results/spiking_lava/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
data_dir=$1 net=$2 dense_model=${3:-lava}
results=benchmarks/results/spiking_lava
mkdir -p "$results"
echo "bash benchmarks/spiking_lava_mnist.sh $*" >> "$results/commands.txt"
run="benchmarks/runs/spiking_mnist_${net}_brainprop"
export_dir="$run/export-lava"
.venv/bin/neuroprop export --target lava "$run" --data-dir "$data_dir" --out "$export_dir" \
    | tee "$results/${net}_resources.txt"
.venv/bin/neuroprop run --target lava "$export_dir" --data-dir "$data_dir" \
    --dense-model "$dense_model" | tee "$results/${net}_${dense_model}.txt"
cp "$export_dir/lava_summary.json" "$results/${net}_${dense_model}.json"
