#!/usr/bin/env bash
# Rate nets converted to spiking by threshold balancing (neuroprop convert), full MNIST:
# train the rate net (configs/mnist_<net>_reference.yaml, BrainProp) to the epoch cap, then convert
# it at each T and score the spiking net in PyTorch on the test set (summary.json of each
# converted run holds its test accuracy beside the rate net's).
#
#   bash benchmarks/conversion_mnist.sh DATA_DIR NET MAX_EPOCHS [override ...]
#   e.g. bash benchmarks/conversion_mnist.sh ../shared/data dense 10 network.init.std=0.05
#
# Results go to benchmarks/results/conversion_mnist/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
data_dir=$1 net=$2 max_epochs=$3
shift 3
results=benchmarks/results/conversion_mnist
mkdir -p "$results" benchmarks/runs
echo "bash benchmarks/conversion_mnist.sh $data_dir $net $max_epochs $*" >> "$results/commands.txt"
run="benchmarks/runs/conversion_mnist_${net}"
resume=()
[ -f "$run/checkpoint.pt" ] && resume=(--resume)
.venv/bin/neuroprop train --config "configs/mnist_${net}_reference.yaml" --data-dir "$data_dir" \
    --run-dir "$run" --no-progress "${resume[@]}" "training.max_epochs=$max_epochs" "$@"
mkdir -p "$results/$net"
cp "$run/summary.json" "$results/$net/rate_summary.json"
for t in 8 16 32; do
    rm -rf "$run-spiking-T$t"  # a folder this script wrote before
    .venv/bin/neuroprop convert "$run" --timesteps "$t" --data-dir "$data_dir" \
        --out "$run-spiking-T$t"
    cp "$run-spiking-T$t/summary.json" "$results/$net/spiking_T${t}_summary.json"
done
