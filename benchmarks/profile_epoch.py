"""Where an MNIST training epoch goes: per batch, the rule's step (forward, feedback and
update) against the optimizer, and the operators that take the time.

    python benchmarks/profile_epoch.py --data-dir ../shared/data --batches 60 dense conv
    python benchmarks/profile_epoch.py --data-dir ../shared/data dense --precision bfloat16

For each net (configs/mnist_<net>.yaml, or ``<net>_reference``), ``--precision`` and rule
(BrainProp as the config sets it, EBP): 5 warm-up batches, then ``--batches`` timed
batches (milliseconds per batch for ``zero_grad``, ``rule.step`` and ``optimizer.step``,
and the page faults per batch: fresh pages the kernel had to zero), then 20 batches under
torch.profiler (the 8 operators with the most self time). The allocator is set up as
training sets it (``neuroprop.training.allocator``) unless ``--default-allocator``.
Writes benchmarks/results/profile/README.md. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import torch
from epoch_time import NETS, RULES, label, net_config, precision_flag
from torch.profiler import ProfilerActivity, profile

from neuroprop.network.spec import PRECISIONS
from neuroprop.training.allocator import keep_freed_memory
from neuroprop.training.trainer import build_experiment

OUT = Path(__file__).resolve().parent / "results" / "profile"


def profile_rule(net: str, rule: str, precision: str, data_dir: str, batches: int
                 ) -> list[str]:
    config = net_config(net, rule, precision)
    exp = build_experiment(config, data_dir)
    generator = torch.Generator().manual_seed(1)
    data = exp.dataset.train.batches(config.training.batch_size, shuffle=True,
                                     generator=generator)
    exp.network.train()

    def one_batch(times: dict[str, float] | None) -> None:
        x, y = next(data)
        marks = [time.perf_counter()]
        exp.optimizer.zero_grad(set_to_none=True)
        marks.append(time.perf_counter())
        exp.rule.step(exp.network, x, y)
        marks.append(time.perf_counter())
        exp.optimizer.step()
        marks.append(time.perf_counter())
        if times is not None:
            for name, start, stop in zip(times, marks, marks[1:], strict=False):
                times[name] += stop - start

    for _ in range(5):
        one_batch(None)
    times = {"zero_grad": 0.0, "rule.step": 0.0, "optimizer.step": 0.0}
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(batches):
        one_batch(times)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / batches
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(20):
            one_batch(None)
    ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in ops)
    cells = ", ".join(f"{name} {1000 * value / batches:.2f}" for name, value in times.items())
    top = ", ".join(f"{e.key} {100 * e.self_cpu_time_total / total:.0f} %" for e in ops[:8])
    per_batch = 1000 * sum(times.values()) / batches
    return [f"| {label(net, precision)} | {rule} | {config.optimizer.name} | {per_batch:.2f} "
            f"| {cells} | {faults:.0f} | {top} |"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nets", nargs="+", choices=NETS)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--precision", nargs="+", choices=PRECISIONS, default=["float32"])
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc's malloc as it starts (training keeps freed memory)")
    args = parser.parse_args()
    kept = not args.default_allocator and keep_freed_memory()
    rows = []
    for net in args.nets:
        for precision in args.precision:
            for rule in RULES:
                rows += profile_rule(net, rule, precision, args.data_dir, args.batches)
                print(rows[-1], flush=True)
    command = (f"python benchmarks/profile_epoch.py --data-dir {args.data_dir} --batches "
               f"{args.batches} {' '.join(args.nets)}{precision_flag(args.precision)}"
               f"{' --default-allocator' if args.default_allocator else ''}")
    lines = ["# Where a training batch goes", "",
             f"Command (from the repository root, in .venv): `{command}`", "",
             f"{torch.get_num_threads()} torch threads, torch {torch.__version__}. "
             "Milliseconds per batch (mean over the timed batches); operators: share of the "
             "self CPU time of 20 profiled batches. Allocator: "
             f"{'freed memory kept (as in training)' if kept else 'glibc as it starts'}.", "",
             "| net | rule | optimizer | ms/batch | of which (ms) | page faults/batch "
             "| top operators |",
             "|---|---|---|---|---|---|---|", *rows]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "README.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
