"""Spiking BrainProp against BPTT on one net: seconds per epoch, and peak memory against T.

    python benchmarks/spiking_cost.py --data-dir ../shared/data [--batches 40]
        [--timesteps 8 16 32] [--config configs/mnist_dense_spiking.yaml]

Time: both rules train the same net (the config, at its own T) batch by batch, interleaved
in blocks of 10 batches so that drift in the machine's load hits both alike; then each
runs the validation pass once. Seconds per epoch = median seconds per training batch x
batches per epoch + the validation pass (a measured partial epoch, extrapolated: a full
BPTT epoch of the MNIST dense net takes many minutes).

Memory: for each rule and T, a fresh process builds the experiment, reads its resident
memory, resets the kernel's peak-RSS mark (``/proc/self/clear_refs``), trains
``--batches`` batches and reads the peak resident memory since the reset (VmHWM); the
difference is what training adds (activations, traces, autograd graph).

Writes benchmarks/results/spiking_cost/README.md and results.json. Run it on an otherwise
idle machine.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from neuroprop.config import load_config
from neuroprop.training.trainer import Experiment, accuracy, build_experiment

RULES = ("brainprop", "bptt")
OUT = Path(__file__).resolve().parent / "results" / "spiking_cost"
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "mnist_dense_spiking.yaml"


def _status_mib(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS: resident now; VmHWM: peak) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _train_batches(exp: Experiment, batches: int, seed: int) -> list[float]:
    """Seconds of each of ``batches`` training batches (rule step + optimizer step)."""
    generator = torch.Generator().manual_seed(seed)
    exp.network.train()
    seconds = []
    for index, (x, y) in enumerate(exp.dataset.train.batches(
            exp.config.training.batch_size, shuffle=True, generator=generator)):
        if index == batches:
            break
        start = time.perf_counter()
        exp.optimizer.zero_grad(set_to_none=True)
        exp.rule.step(exp.network, x, y)
        exp.optimizer.step()
        seconds.append(time.perf_counter() - start)
    return seconds


def memory_probe(config: str, data_dir: str, rule: str, timesteps: int, batches: int) -> dict:
    """Run in a fresh process: resident memory before and peak during training."""
    exp = build_experiment(load_config(config, [f"rule={rule}",
                                                f"network.timesteps={timesteps}"]), data_dir)
    before = _status_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    _train_batches(exp, batches, seed=1)
    peak = _status_mib("VmHWM")
    return {"rule": rule, "timesteps": timesteps, "rss_before_mib": before,
            "peak_mib": peak, "training_mib": peak - before}


def time_rules(config: str, data_dir: str, batches: int) -> dict[str, dict]:
    experiments = {rule: build_experiment(load_config(config, [f"rule={rule}"]), data_dir)
                   for rule in RULES}
    seconds: dict[str, list[float]] = {rule: [] for rule in RULES}
    for block in range(math.ceil(batches / 10)):
        for rule in RULES:
            seconds[rule] += _train_batches(experiments[rule], min(10, batches - 10 * block),
                                            seed=block)
    result = {}
    for rule, exp in experiments.items():
        start = time.perf_counter()
        accuracy(exp.network, exp.dataset.val, exp.config.training.eval_batch_size)
        validation = time.perf_counter() - start
        per_epoch = math.ceil(len(exp.dataset.train) / exp.config.training.batch_size)
        batch = statistics.median(seconds[rule])
        result[rule] = {"seconds_per_batch": batch, "batches_per_epoch": per_epoch,
                        "validation_seconds": validation,
                        "seconds_per_epoch": batch * per_epoch + validation,
                        "batch_seconds": seconds[rule]}
        print(f"{rule}: {batch:.3f} s/batch, validation {validation:.1f} s, "
              f"{result[rule]['seconds_per_epoch']:.1f} s/epoch", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--timesteps", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--probe", nargs=2, metavar=("RULE", "T"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(memory_probe(args.config, args.data_dir, args.probe[0],
                                      int(args.probe[1]), args.batches)))
        return
    timing = time_rules(args.config, args.data_dir, args.batches)
    memory = []
    for timesteps in args.timesteps:
        for rule in RULES:
            out = subprocess.run(
                [sys.executable, __file__, "--data-dir", args.data_dir, "--config", args.config,
                 "--batches", str(min(args.batches, 10)), "--probe", rule, str(timesteps)],
                check=True, capture_output=True, text=True).stdout
            memory.append(json.loads(out.strip().splitlines()[-1]))
            print(f"memory {rule} T={timesteps}: +{memory[-1]['training_mib']:.0f} MiB",
                  flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps({"timing": timing, "memory": memory},
                                                 indent=2) + "\n")
    config = Path(args.config)
    command = (f"python benchmarks/spiking_cost.py --data-dir {args.data_dir} --config "
               f"{config} --batches {args.batches} --timesteps "
               f"{' '.join(map(str, args.timesteps))}")
    ratio = timing["brainprop"]["seconds_per_epoch"] / timing["bptt"]["seconds_per_epoch"]
    lines = [
        "# Spiking BrainProp vs BPTT: seconds per epoch and memory against T",
        "",
        f"Command (from the repository root, in .venv): `{command}`",
        "",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch "
        f"{torch.__version__}; net {config.name}. Seconds per epoch = median seconds per "
        f"training batch ({args.batches} batches per rule, interleaved) x batches per epoch "
        "+ one validation pass.",
        "",
        "| rule | s/batch | batches/epoch | validation s | s/epoch |",
        "|---|---|---|---|---|",
    ]
    for rule, row in timing.items():
        lines.append(f"| {rule} | {row['seconds_per_batch']:.3f} | {row['batches_per_epoch']} | "
                     f"{row['validation_seconds']:.1f} | {row['seconds_per_epoch']:.1f} |")
    lines += ["", f"BrainProp / BPTT seconds per epoch: {ratio:.2f}", "",
              f"Peak resident memory added by training ({min(args.batches, 10)} batches, "
              "fresh process per row):", "",
              "| rule | T | before training MiB | peak MiB | training adds MiB |",
              "|---|---|---|---|---|"]
    for row in memory:
        lines.append(f"| {row['rule']} | {row['timesteps']} | {row['rss_before_mib']:.0f} | "
                     f"{row['peak_mib']:.0f} | {row['training_mib']:.0f} |")
    (OUT / "README.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
