"""Collect the lava_summary.json files of benchmarks/lava_mnist.sh into a markdown table.

    python benchmarks/collect_lava.py RESULTS_DIR

RESULTS_DIR/commands.txt lists the commands that produced the runs.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="folder of <net>_<variant>.json")
    args = parser.parse_args()
    rows = []
    streaming_rate = {}
    for path in sorted(args.results.glob("*_*.json")):
        s = json.loads(path.read_text())
        net = path.stem.split("_")[0]
        if s["method"] == "streaming" and s["dense_model"] == "lava":
            streaming_rate[net] = s["samples_per_second"]
        rows.append((net, path.stem, s))
    lines = []
    for net, name, s in rows:
        ratio = streaming_rate.get(net, float("nan")) / s["samples_per_second"]
        lines.append(
            f"| {name} | {s['method']} | {s['dense_model']} | {s['samples']} | "
            f"{100 * s['float_accuracy']:.2f} | {100 * s['emulator_accuracy']:.2f} | "
            f"{100 * s['accuracy']:.2f} | "
            f"{100 * (s['accuracy'] - s['float_accuracy']):+.2f} | "
            f"{100 * s['agreement_with_emulator']:.2f} | "
            f"{100 * s['argmax_agreement_with_float']:.2f} | "
            f"{s['samples_per_second']:.0f} | {ratio:.1f} |"
        )
    print("\n".join([
        f"# {args.results.name} benchmark: MNIST test set on Lava's Loihi simulator",
        "",
        "Commands (from the repository root):",
        "",
        *[f"    {line}" for line in (args.results / "commands.txt").read_text().splitlines()],
        "",
        f"Machine: {platform.machine()}, 2 cores. Fixed point (`Loihi2SimCfg('fixed_pt')`).",
        "Lava - float: Lava accuracy minus the float PyTorch model's, in points.",
        "Speed ratio: samples/s of streaming with Lava's own Dense model divided by this",
        "row's (12.8 means streaming is 12.8 times faster than this row's method).",
        "",
        "| run | method | Dense model | samples | float acc % | integer model acc % | "
        "Lava acc % | Lava - float | Lava == integer model % | argmax == float % | "
        "samples/s | speed ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *lines,
    ]))


if __name__ == "__main__":
    main()
