"""``run_sweep``: lock the sweep directory, keep finished runs, train the rest on Ray, report.

A run directory is ``SWEEP_DIR/<run name>``. One that holds a ``summary.json`` is kept as
it is (finished or diverged: not trained again); one with a checkpoint is resumed; any
other is started. A run directory whose ``config.yaml`` differs from what the sweep now
asks for is refused before anything starts, so that one table never mixes settings, with
one exception: a higher ``training.max_epochs`` extends the sweep. Runs that the old cap
ended are resumed from their checkpoints up to the new cap; runs that early stopping
ended are kept (their patience is spent, more epochs would not change them).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tqdm import tqdm

from neuroprop.config import config_from_dict, load_yaml
from neuroprop.data import resolve_data_dir
from neuroprop.errors import NeuropropError
from neuroprop.sweep.plan import PlannedRun, SweepPlan
from neuroprop.sweep.pool import Job, check_address, run_jobs
from neuroprop.sweep.report import run_record, write_report
from neuroprop.sweep.task import LOG
from neuroprop.training.lock import LOCK, run_lock
from neuroprop.training.trainer import CHECKPOINT, CONFIG, SUMMARY

KEPT, RESUMED, STARTED = "kept", "resumed", "started"


def _first_difference(old: object, new: object, key: str = "") -> tuple | None:
    """The first dotted key whose values differ, with both values (None if equal)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for name in [*old, *(name for name in new if name not in old)]:
            found = _first_difference(old.get(name), new.get(name),
                                      f"{key}.{name}" if key else name)
            if found:
                return found
        return None
    return None if old == new else (key, old, new)


def run_state(run: PlannedRun, run_dir: Path) -> str:
    """``kept``, ``resumed`` or ``started``; refuses a folder that is not this run's."""
    if not run_dir.exists():
        return STARTED
    if not run_dir.is_dir():
        raise NeuropropError(f"{run_dir}: not a folder; move it away or choose another --out")
    if not (run_dir / CONFIG).is_file():
        if any(entry.name not in (LOCK, LOG) for entry in run_dir.iterdir()):
            raise NeuropropError(f"{run_dir}: holds files but no {CONFIG}, so it is no run "
                                 "of neuroprop's; move it away or choose another --out")
        return STARTED
    raw = load_yaml(run_dir / CONFIG)
    try:
        stored = config_from_dict(raw, str(raw.get("name", "experiment"))).to_dict()
    except NeuropropError as error:
        raise NeuropropError(f"{run_dir / CONFIG}: {error}") from None
    cap = run.config.training.max_epochs
    if stored["training"]["max_epochs"] < cap:  # a higher cap extends the run
        stored["training"]["max_epochs"] = cap
    difference = _first_difference(stored, run.config.to_dict())
    if difference is not None:
        key, old, new = difference
        raise NeuropropError(f"{run_dir} was trained with {key} = {old!r}, this sweep sets "
                             f"{new!r}; choose another --out (or move that run away)")
    if (run_dir / SUMMARY).is_file():
        try:
            summary = json.loads((run_dir / SUMMARY).read_text())
        except ValueError:
            raise NeuropropError(f"{run_dir / SUMMARY}: not valid JSON; move that run away "
                                 "to train it again") from None
        if _ended_by_a_lower_cap(summary, cap) and (run_dir / CHECKPOINT).is_file():
            return RESUMED
        return KEPT
    return RESUMED if (run_dir / CHECKPOINT).is_file() else STARTED


def _ended_by_a_lower_cap(summary: object, cap: int) -> bool:
    """Whether a finished run stopped at an epoch cap below ``cap`` (so it trains on)."""
    if not isinstance(summary, dict) or summary.get("stop_reason") != "max_epochs":
        return False
    epochs = summary.get("epochs")
    return isinstance(epochs, int) and epochs < cap


def run_sweep(plan: SweepPlan, sweep_dir: Path, address: str | None = None,
              workers: int | None = None, data_dir: str | None = None,
              progress: bool | None = None) -> tuple[dict, str]:
    """Run ``plan`` in ``sweep_dir`` on Ray (local with ``workers`` CPUs, default all of
    this machine's, or the cluster at ``address``); returns the summary and its table."""
    if workers is not None and workers < 1:
        raise NeuropropError(f"--workers {workers}: expected a positive number of runs at once")
    if address is not None:
        check_address(address)
    sweep_dir = Path(sweep_dir).absolute()
    with run_lock(sweep_dir, kind="sweep", option="--out"):
        run_dirs = [sweep_dir / run.name for run in plan.runs]
        states = [run_state(run, run_dir) for run, run_dir in zip(plan.runs, run_dirs,
                                                                   strict=True)]
        jobs = [Job(run.name, (run.config, str(run_dir), str(resolve_data_dir(
                    data_dir if data_dir is not None else run.config.dataset.data_dir
                ).absolute())))
                for run, run_dir, state in zip(plan.runs, run_dirs, states, strict=True)
                if state != KEPT]
        counts = {state: states.count(state) for state in (KEPT, RESUMED, STARTED)}
        print(f"sweep: {len(plan.runs)} runs in {sweep_dir}: {counts[KEPT]} finished before "
              f"(kept), {counts[RESUMED]} to resume, {counts[STARTED]} to start",
              file=sys.stderr)
        errors: dict[str, str | None] = {}

        def done(name: str, error: str | None) -> None:
            errors[name] = error
            tqdm.write(f"{name}: {'finished' if error is None else 'failed: ' + error}",
                       file=sys.stderr)

        if jobs:
            if workers is None:  # local: all CPUs; a cluster: as many as it has free
                workers = (os.cpu_count() or 1) if address is None else len(jobs)
            run_jobs(jobs, address, workers, done, progress)
        records = [run_record(run, run_dir, state, errors.get(run.name))
                   for run, run_dir, state in zip(plan.runs, run_dirs, states, strict=True)]
        return write_report(plan, sweep_dir, records, run_dirs)
