"""The paper's Table 1 for MNIST from the sweeps of benchmarks/mnist_table1.sh.

    python benchmarks/collect_table1.py benchmarks/results/table1

Reads RESULTS/<net>/summary.json (a ``neuroprop sweep`` summary with the grid
``rule=brainprop,ebp``), RESULTS/<net>/runs.jsonl (how each run stopped) and
RESULTS/commands.txt; prints markdown: per net and rule the mean (sd) over seeds of the
epochs to the stopping rule and of test accuracy, how many runs early stopping ended
(the others reached the epoch cap), beside the paper's numbers (NeurIPS 2020 Table 1,
10 seeds) and the issue's targets.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from neuroprop.config import parse_override
from neuroprop.rules.registry import rule_options_from_config
from neuroprop.sweep.report import mean_sd_cell

PAPER = {  # net: {rule: (epochs mean, sd, accuracy mean, sd)}
    "dense": {"brainprop": (51, 19, 98.68, 0.07), "ebp": (33, 19, 98.54, 0.16)},
    "conv": {"brainprop": (63, 18, 99.31, 0.04), "ebp": (51, 13, 99.39, 0.03)},
    "loccon": {"brainprop": (65, 19, 99.05, 0.06), "ebp": (70, 28, 99.06, 0.06)},
}
TARGET = {"dense": 98.6, "conv": 99.25, "loccon": 99.0}  # BrainProp mean test accuracy
RULE_NAMES = {"brainprop": "BrainProp", "ebp": "EBP"}


def verdict(net: str, stat: dict) -> str:
    if stat["mean"] is None:
        return "no finished run"
    gap = 100 * stat["mean"] - TARGET[net]
    return (f">= {TARGET[net]}: met (+{gap:.2f})" if gap >= 0
            else f">= {TARGET[net]}: missed by {-gap:.2f}")


def rule_name(grid_value: str) -> str:
    """The rule of a ``rule=`` grid value: ``ebp``, or a map's name
    (``{name: brainprop, epsilon: 1.0, temperature: 0.1}``)."""
    return rule_options_from_config(parse_override(f"rule={grid_value}")[1]).name


def early_stops(runs_file: Path) -> Counter[str]:
    """Per rule, how many runs of the sweep's runs.jsonl (one record per run) early
    stopping ended."""
    records = map(json.loads, runs_file.read_text().splitlines())
    return Counter(rule_name(record["grid"]["rule"]) for record in records
                   if record.get("stop_reason") == "early_stopping")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    args = parser.parse_args()
    rows = []
    for net in PAPER:
        path = args.results / net / "summary.json"
        if not path.exists():
            continue
        summary = json.loads(path.read_text())
        stopped = early_stops(args.results / net / "runs.jsonl")
        cap = next((o.split("=", 1)[1] for o in summary["overrides"]
                    if o.startswith("training.max_epochs=")), "config")
        for combo in summary["combinations"]:
            rule = rule_name(combo["grid"]["rule"])
            epochs, epochs_sd, accuracy, accuracy_sd = PAPER[net][rule]
            reach98 = next((t for t in combo["time_to_accuracy"] if t["threshold"] == 0.98),
                           None)
            to98 = "–" if reach98 is None else (mean_sd_cell(reach98["epoch"], digits=1)
                                                + f" [{reach98['reached']}/{combo['finished']}]")
            rows.append(
                f"| {net} | {RULE_NAMES[rule]} | {combo['finished']}/{combo['runs']} | {cap} | "
                f"{stopped[rule]}/{combo['finished']} | "
                f"{mean_sd_cell(combo['epochs'], digits=1)} | "
                f"{mean_sd_cell(combo['best_epoch'], digits=1)} | "
                f"{to98} | **{mean_sd_cell(combo['test_accuracy'], 100)}** | "
                f"{epochs} ({epochs_sd}) | {accuracy:.2f} ({accuracy_sd:.2f}) | "
                f"{verdict(net, combo['test_accuracy']) if rule == 'brainprop' else ''} |")
    commands = (args.results / "commands.txt").read_text().splitlines()
    print("\n".join([
        "# MNIST Table 1: BrainProp and EBP, mean (sd) over seeds",
        "",
        "Commands (from the repository root):",
        "",
        *[f"    {line}" for line in commands],
        "",
        "Each net's default config (configs/mnist_<net>.yaml), validation split of 6,000 "
        "training images for early stopping (\"stopped early\": runs that early stopping "
        "ended; the others reached the epoch cap); the test set scored once per run, on the "
        "best validation epoch's weights. The paper's numbers are means of 10 seeds and select on "
        "the test set (the released code validates on it).",
        "",
        "| net | rule | runs | epoch cap | stopped early | epochs run | best epoch "
        "| epochs to 98 % val | test acc % | paper epochs | paper acc % | target |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]))


if __name__ == "__main__":
    main()
