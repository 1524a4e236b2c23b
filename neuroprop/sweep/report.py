"""A sweep's results: one record per run, and per combination the mean (sd) over seeds.

Written into the sweep directory: ``runs.jsonl`` (one line per run), ``summary.json`` and
``summary.md`` (the paper's Table 1 form: test accuracy and epochs as mean (sd) over
seeds, plus the time to each accuracy threshold), ``curves.png`` (the validation
accuracy of every seed, one panel per combination). sd is the sample standard deviation
(n - 1); it is null for one run.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from neuroprop.sweep.plan import PlannedRun, SweepPlan, combination_label  # noqa: E402
from neuroprop.training.checkpoint import atomic_write_bytes, atomic_write_text  # noqa: E402
from neuroprop.training.metrics import read_history  # noqa: E402

RUNS = "runs.jsonl"
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
CURVES = "curves.png"


def run_record(run: PlannedRun, run_dir: Path, action: str, error: str | None) -> dict:
    """What one run gave: its summary.json fields, or ``status: failed`` and the error."""
    record = {"run": run.name, "seed": run.seed, "grid": dict(run.grid), "action": action,
              "run_dir": str(run_dir)}
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    status = summary.get("status")
    if status == "finished":
        error = None
    elif status == "diverged":
        error = error or f"weights diverged (NaN/inf) in epoch {summary.get('diverged_epoch')}"
    else:
        status = "failed"
        error = error or f"{run_dir}: no summary.json after the run; see its train.log"
    fields = ("test_accuracy", "val_accuracy", "best_epoch", "epochs", "stop_reason",
              "seconds_per_epoch", "time_to_accuracy")
    return record | {"status": status, "error": error} | {
        key: summary.get(key) for key in fields}


def mean_sd(values: list[float]) -> dict:
    """``{"mean", "sd", "n"}``; sd is the sample standard deviation (None for n < 2)."""
    return {"mean": statistics.fmean(values) if values else None,
            "sd": statistics.stdev(values) if len(values) > 1 else None, "n": len(values)}


def _thresholds(records: list[dict]) -> list[float]:
    seen: list[float] = []
    for record in records:
        for entry in record["time_to_accuracy"] or []:
            if entry["threshold"] not in seen:
                seen.append(entry["threshold"])
    return seen


def aggregate(plan: SweepPlan, records: list[dict]) -> dict:
    """The sweep's summary: per combination, mean (sd) over its finished runs."""
    thresholds = _thresholds(records)
    combinations = []
    for grid in dict.fromkeys(run.grid for run in plan.runs):
        mine = [r for r, run in zip(records, plan.runs, strict=True) if run.grid == grid]
        done = [r for r in mine if r["status"] == "finished"]
        timed = []
        for threshold in thresholds:
            reached = [entry for r in done for entry in r["time_to_accuracy"] or []
                       if entry["threshold"] == threshold and entry["epoch"] is not None]
            timed.append({"threshold": threshold, "reached": len(reached),
                          "epoch": mean_sd([e["epoch"] for e in reached]),
                          "seconds": mean_sd([e["seconds"] for e in reached])})
        combinations.append({
            "combination": combination_label(grid), "grid": dict(grid), "runs": len(mine),
            "finished": len(done),
            "test_accuracy": mean_sd([r["test_accuracy"] for r in done]),
            "best_epoch": mean_sd([r["best_epoch"] for r in done]),
            "epochs": mean_sd([r["epochs"] for r in done]),
            "time_to_accuracy": timed,
            "failed": [{"run": r["run"], "error": r["error"]} for r in mine
                       if r["status"] != "finished"]})
    return {"config": str(plan.config_path), "overrides": list(plan.overrides),
            "seeds": list(plan.seeds),
            "grid": {axis.key: list(axis.values) for axis in plan.grid},
            "runs": len(records), "failed": sum(r["status"] != "finished" for r in records),
            "combinations": combinations}


def mean_sd_cell(stat: dict, scale: float = 1.0, digits: int = 2) -> str:
    """A ``mean_sd`` result as "mean (sd)", scaled ("–" where there is none)."""
    if stat["mean"] is None:
        return "–"
    sd = "–" if stat["sd"] is None else f"{scale * stat['sd']:.{digits}f}"
    return f"{scale * stat['mean']:.{digits}f} ({sd})"


def _percent(threshold: float) -> str:
    return f"{100 * threshold:g} %"


def render(summary: dict) -> str:
    """The summary as a markdown table (one row per combination), then the failed runs."""
    keys = list(summary["grid"])
    thresholds = [t["threshold"] for t in summary["combinations"][0]["time_to_accuracy"]]
    header = [*(keys or ["combination"]), "runs", "test accuracy (%)", "best epoch",
              "epochs run"]
    for threshold in thresholds:
        header += [f"epochs to {_percent(threshold)}", f"s to {_percent(threshold)}"]
    lines = [f"Sweep of {summary['config']} {' '.join(summary['overrides'])}".rstrip()
             + f": seeds {', '.join(map(str, summary['seeds']))}; mean (sd) over the "
             "finished runs of each row.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for combo in summary["combinations"]:
        row = [combo["grid"][key] for key in keys] if keys else [combo["combination"]]
        row += [f"{combo['finished']}/{combo['runs']}",
                mean_sd_cell(combo["test_accuracy"], 100),
                mean_sd_cell(combo["best_epoch"], digits=1),
                mean_sd_cell(combo["epochs"], digits=1)]
        for timed in combo["time_to_accuracy"]:
            partial = ("" if timed["reached"] == combo["finished"]
                       else f" [{timed['reached']}/{combo['finished']}]")
            row += [mean_sd_cell(timed["epoch"], digits=1) + partial,
                    mean_sd_cell(timed["seconds"])]
        lines.append("| " + " | ".join(row) + " |")
    if thresholds:
        lines += ["", "Epochs and seconds to an accuracy: until validation accuracy first "
                  "reached it, over the runs that did ([reached/finished] when not all did)."]
    failed = [f for combo in summary["combinations"] for f in combo["failed"]]
    if failed:
        lines += ["", f"Failed runs ({len(failed)} of {summary['runs']}):", ""]
        lines += [f"- {f['run']}: {f['error']}" for f in failed]
    return "\n".join(lines) + "\n"


def plot_curves(plan: SweepPlan, run_dirs: list[Path], out: Path) -> Path:
    """Validation accuracy per epoch of every seed, one panel per combination."""
    grids = list(dict.fromkeys(run.grid for run in plan.runs))
    cols = min(3, len(grids))
    rows = math.ceil(len(grids) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.4 * rows), squeeze=False,
                             sharey=True)
    for ax, grid in zip(axes.flat, grids, strict=False):
        for run, run_dir in zip(plan.runs, run_dirs, strict=True):
            if run.grid != grid:
                continue
            history = [row for row in read_history(run_dir / "metrics.jsonl")
                       if row.get("event") == "epoch"]
            ax.plot([row["epoch"] for row in history],
                    [100 * row["val_accuracy"] for row in history], label=f"seed {run.seed}",
                    linewidth=1)
        ax.set_title(combination_label(grid), fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if len(plan.seeds) <= 10:
            ax.legend(fontsize=7)
    for ax in axes.flat[len(grids):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("validation accuracy (%)")
    fig.tight_layout()
    atomic_write_bytes(out, lambda handle: fig.savefig(handle, format="png", dpi=110))
    plt.close(fig)
    return out


def write_report(plan: SweepPlan, sweep_dir: Path, records: list[dict],
                 run_dirs: list[Path]) -> tuple[dict, str]:
    """Write runs.jsonl, summary.json, summary.md and curves.png; return the summary and
    its markdown."""
    summary = aggregate(plan, records)
    text = render(summary)
    atomic_write_text(sweep_dir / RUNS, "".join(json.dumps(r, sort_keys=True) + "\n"
                                                for r in records))
    atomic_write_text(sweep_dir / SUMMARY_JSON, json.dumps(summary, indent=2) + "\n")
    atomic_write_text(sweep_dir / SUMMARY_MD, text)
    plot_curves(plan, run_dirs, sweep_dir / CURVES)
    return summary, text
