#!/usr/bin/env bash
# Why BrainProp on the dense MNIST net finds the classes one at a time, and what changes
# it: the reference code's settings against the paper text's, exploration, optimistic
# rewards, the init scale and neuroprop's default. One seed, EPOCHS epochs each, no early
# stopping; validation accuracy after every epoch.
#
#   bash benchmarks/class_discovery.sh DATA_DIR EPOCHS
#   e.g. bash benchmarks/class_discovery.sh ../shared/data 5
#
# Runs go to benchmarks/runs/class_discovery/ (ignored by git); the table and the
# commands go to benchmarks/results/class_discovery/README.md.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
data_dir=$1 epochs=$2
runs=benchmarks/runs/class_discovery results=benchmarks/results/class_discovery
mkdir -p "$runs" "$results"
variants=(
    "reference|configs/mnist_dense_reference.yaml"
    "paper_text|configs/mnist_dense_paper_text.yaml"
    "reference_epsilon_0.2|configs/mnist_dense_reference.yaml rule.epsilon=0.2"
    "reference_epsilon_0.2_temperature_0.001|configs/mnist_dense_reference.yaml rule={name: brainprop, epsilon: 0.2, temperature: 0.001}"
    "reference_optimistic|configs/mnist_dense_reference.yaml rule={name: brainprop, reward: {correct: 0, wrong: -1}}"
    "reference_std_0.05|configs/mnist_dense_reference.yaml network.init.std=0.05"
    "default|configs/mnist_dense.yaml"
)
: > "$results/commands.txt"
for variant in "${variants[@]}"; do
    name=${variant%%|*} rest=${variant#*|}
    config=${rest%% *} overrides=()
    [ "$config" != "$rest" ] && overrides=("${rest#* }")
    rm -rf "${runs:?}/$name"
    command=(.venv/bin/neuroprop train --config "$config" --data-dir "$data_dir"
             --run-dir "$runs/$name" --no-progress "training.max_epochs=$epochs"
             training.patience=null "${overrides[@]}")
    printf '%q ' "${command[@]}" >> "$results/commands.txt"
    echo >> "$results/commands.txt"
    "${command[@]}" 2>&1 | tail -n 1 | tee "$runs/$name.last"
done
.venv/bin/python - "$runs" "$results" "$epochs" "${variants[@]}" <<'PY'
import json, sys
from pathlib import Path
runs, results, epochs = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
lines = ["# Class discovery: dense MNIST BrainProp, validation accuracy per epoch (seed 0)", "",
         "Commands (from the repository root):", ""]
lines += [f"    {c}" for c in (results / "commands.txt").read_text().splitlines()]
lines += ["", "| variant | " + " | ".join(f"epoch {e}" for e in range(1, epochs + 1)) + " |",
          "|---|" + "---|" * epochs]
for variant in sys.argv[4:]:
    name = variant.split("|")[0]
    metrics = runs / name / "metrics.jsonl"
    rows = [json.loads(l) for l in metrics.read_text().splitlines()] if metrics.exists() else []
    accs = [f"{100 * r['val_accuracy']:.1f}" for r in rows if r.get("event") == "epoch"]
    if len(accs) < epochs:
        accs += [(runs / f"{name}.last").read_text().strip().removeprefix("neuroprop: error: ")
                 .split(";")[0]] + [""] * (epochs - len(accs) - 1)
    lines.append(f"| {name} | " + " | ".join(accs) + " |")
(results / "README.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
