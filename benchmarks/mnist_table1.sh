#!/usr/bin/env bash
# The paper's Table 1 rows for MNIST: BrainProp and EBP, several seeds each, on Ray
# (`neuroprop sweep`), each net from its default config (configs/mnist_<net>.yaml).
#
#   bash benchmarks/mnist_table1.sh DATA_DIR SEEDS WORKERS NET:CAP [NET:CAP ...]
#   e.g. bash benchmarks/mnist_table1.sh ../shared/data 0-2 2 dense:40 conv:15 loccon:8
#
# CAP is training.max_epochs (early stopping, patience from the config, ends a run
# before it when it can). Every seed trains both rules: the config's own BrainProp (its
# exploration options included) and EBP (--grid rule=<the config's rule>,ebp), WORKERS
# runs at a time, one torch thread each. Sweeps go to benchmarks/runs/table1_<net>/
# (ignored by git; the same command resumes them, and a higher CAP extends the runs that the
# old cap ended); each sweep's summary.md, summary.json,
# runs.jsonl and curves.png, the commands run and the combined table go to
# benchmarks/results/table1/. The seconds in these tables are one-thread runs sharing the
# machine; benchmarks/epoch_time.py measures epochs on an idle machine.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
data_dir=$1 seeds=$2 workers=$3
shift 3
results=benchmarks/results/table1
mkdir -p "$results" benchmarks/runs
echo "bash benchmarks/mnist_table1.sh $data_dir $seeds $workers $*" >> "$results/commands.txt"
for item in "$@"; do
    net=${item%%:*} cap=${item#*:}
    config="configs/mnist_${net}.yaml"
    brainprop=$(.venv/bin/python benchmarks/config_rule.py "$config")
    .venv/bin/neuroprop sweep "$config" "training.max_epochs=$cap" \
        --data-dir "$data_dir" --seeds "$seeds" --workers "$workers" \
        --out "benchmarks/runs/table1_${net}" --grid "rule=$brainprop,ebp"
    mkdir -p "$results/$net"
    for file in summary.md summary.json runs.jsonl curves.png; do
        cp "benchmarks/runs/table1_${net}/$file" "$results/$net/"
    done
done
.venv/bin/python benchmarks/collect_table1.py "$results" > "$results/README.md"
cat "$results/README.md"
