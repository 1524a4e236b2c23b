"""Collect the summary.json of benchmark runs into a markdown table.

    python benchmarks/collect.py RESULTS_DIR

RESULTS_DIR/commands.txt lists the commands that produced the runs.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="folder of <net>_<rule>/summary.json")
    args = parser.parse_args()
    rows = []
    for path in sorted(args.results.glob("*/summary.json")):
        s = json.loads(path.read_text())
        rows.append(
            f"| {path.parent.name} | {s['rule']} | {s['epochs']} | {s['best_epoch']} | "
            f"{s['stop_reason']} | {100 * s['val_accuracy']:.2f} | "
            f"{100 * s['test_accuracy']:.2f} | {s['seconds_per_epoch']:.2f} |"
        )
    print("\n".join([
        f"# {args.results.name} benchmark",
        "",
        "Commands (from the repository root):",
        "",
        *[f"    {line}" for line in (args.results / "commands.txt").read_text().splitlines()],
        "",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, Python {platform.python_version()}.",
        "Seconds per epoch: training plus the validation pass, mean over all epochs.",
        "",
        "| run | rule | epochs | best epoch | stopped by | val acc % | test acc % | s/epoch |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]))


if __name__ == "__main__":
    main()
