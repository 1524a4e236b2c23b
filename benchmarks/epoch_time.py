"""Seconds per epoch of BrainProp and EBP on the same nets, measured in one process.

    python benchmarks/epoch_time.py --data-dir ../shared/data --epochs 3 dense conv loccon \
        dense_reference conv_reference

    python benchmarks/epoch_time.py --data-dir ../shared/data --epochs 3 dense \
        --precision float32 bfloat16

For each net (configs/mnist_<net>.yaml: neuroprop's settings, or the reference code's with
the suffix ``_reference``) and each ``--precision`` (``network.precision``: float32, the
configs' own, or bfloat16 operands for the products) both rules train ``--epochs`` full
epochs,
interleaved (BrainProp epoch 1, EBP epoch 1, BrainProp epoch 2, ...) so that any drift
in the machine's load hits both alike. An epoch's time is the training pass plus the
validation pass, as in summary.json. Writes benchmarks/results/epoch_time/README.md and
a JSON file with every epoch's numbers. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path

import torch

from neuroprop.config import CONFIG_DIR, ExperimentConfig, load_config
from neuroprop.network.spec import PRECISIONS
from neuroprop.training.trainer import build_experiment, train_epoch

RULES = ("brainprop", "ebp")
NETS = [f"{net}{suffix}" for suffix in ("", "_reference") for net in ("dense", "conv", "loccon")]
"""The MNIST nets, each configs/mnist_<net>.yaml."""
OUT = Path(__file__).resolve().parent / "results" / "epoch_time"


def label(net: str, precision: str) -> str:
    return net if precision == "float32" else f"{net} ({precision})"


def precision_flag(precisions: list[str]) -> str:
    """The ``--precision`` part of a command line (none for the default float32)."""
    return "" if precisions == ["float32"] else f" --precision {' '.join(precisions)}"


def net_config(net: str, rule: str, precision: str) -> ExperimentConfig:
    """configs/mnist_<net>.yaml with BrainProp as the config sets it (its exploration
    options included) or EBP instead, in ``precision``."""
    overrides = [f"network.precision={precision}"]
    if rule != "brainprop":
        overrides.append(f"rule={rule}")
    return load_config(CONFIG_DIR / f"mnist_{net}.yaml", overrides)


def time_net(net: str, precision: str, data_dir: str, epochs: int) -> dict[str, list[dict]]:
    experiments = {rule: build_experiment(net_config(net, rule, precision), data_dir)
                   for rule in RULES}
    generators = {rule: torch.Generator().manual_seed(1) for rule in RULES}
    rows: dict[str, list[dict]] = {rule: [] for rule in RULES}
    for epoch in range(1, epochs + 1):
        for rule in RULES:
            row = train_epoch(experiments[rule], generators[rule], epoch, progress=False)
            rows[rule].append(row)
            print(f"{label(net, precision)} {rule} epoch {epoch}: {row['seconds']:.2f} s "
                  f"(train {row['train_seconds']:.2f} s), val {row['val_accuracy']:.4f}",
                  flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nets", nargs="+", choices=NETS)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--precision", nargs="+", choices=PRECISIONS, default=["float32"])
    args = parser.parse_args()
    results = {(net, precision): time_net(net, precision, args.data_dir, args.epochs)
               for net in args.nets for precision in args.precision}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "epoch_time.json").write_text(json.dumps(
        {label(*key): rows for key, rows in results.items()}, indent=2) + "\n")
    command = (f"python benchmarks/epoch_time.py --data-dir {args.data_dir} "
               f"--epochs {args.epochs} {' '.join(args.nets)}{precision_flag(args.precision)}")
    lines = [
        "# Seconds per MNIST epoch (training + validation pass), BrainProp vs EBP",
        "",
        f"Command (from the repository root, in .venv): `{command}`",
        "",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch "
        f"{torch.__version__}. Epochs interleaved between the rules; median over "
        f"{args.epochs} epochs.",
        "",
        "| net | batch | optimizer | BrainProp s/epoch | EBP s/epoch | BrainProp / EBP |",
        "|---|---|---|---|---|---|",
    ]
    for (net, precision), rows in results.items():
        median = {rule: statistics.median(r["seconds"] for r in rows[rule]) for rule in RULES}
        config = load_config(CONFIG_DIR / f"mnist_{net}.yaml")
        lines.append(f"| {label(net, precision)} | {config.training.batch_size} | "
                     f"{config.optimizer.name} | "
                     f"{median['brainprop']:.2f} | {median['ebp']:.2f} | "
                     f"{median['brainprop'] / median['ebp']:.2f} |")
    (OUT / "README.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
