#!/usr/bin/env bash
# The hardware benchmark: the BrainProp nets of the foundation benchmark
# (benchmarks/mnist_foundation.sh, which must have run first) exported to Loihi fixed
# point and run on Lava's simulator over the full 10,000-sample MNIST test set.
#
#   bash benchmarks/lava_mnist.sh DATA_DIR PER_SAMPLE_LIMIT NET [NET ...]
#   e.g. bash benchmarks/lava_mnist.sh ../shared/data 200 dense conv
#
# For each net: streaming with Lava's own Dense model, streaming with the
# bit-identical BLAS Dense model, and the slow per-sample Var set/get approach on the
# first PER_SAMPLE_LIMIT samples (for the speed ratio). Results (lava_summary.json of
# each run, the commands, a table) go to benchmarks/results/lava/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
data_dir=$1 per_sample_limit=$2
shift 2
results=benchmarks/results/lava
mkdir -p "$results"
echo "bash benchmarks/lava_mnist.sh $data_dir $per_sample_limit $*" >> "$results/commands.txt"
for net in "$@"; do
    run="benchmarks/runs/mnist_${net}_brainprop"
    export_dir="$run/export-lava"
    .venv/bin/neuroprop export --target lava "$run" --data-dir "$data_dir" --out "$export_dir" \
        | tee "$results/${net}_resources.txt"
    for variant in lava blas per_sample; do
        case $variant in
            lava) flags=() ;;
            blas) flags=(--dense-model blas) ;;
            per_sample) flags=(--per-sample --limit "$per_sample_limit") ;;
        esac
        .venv/bin/neuroprop run --target lava "$export_dir" --data-dir "$data_dir" "${flags[@]}"
        cp "$export_dir/lava_summary.json" "$results/${net}_${variant}.json"
    done
done
.venv/bin/python benchmarks/collect_lava.py "$results" > "$results/README.md"
cat "$results/README.md"
