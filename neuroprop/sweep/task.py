"""One run of a sweep, as a Ray worker trains it: an ordinary run directory, resumed if it
holds a checkpoint, with the run's own log in ``RUN_DIR/train.log``.

Whatever goes wrong comes back as one line (the full traceback of an unexpected error goes
to the run's log): a failed run is reported in the sweep's summary, it never stops the
sweep.
"""

from __future__ import annotations

import contextlib
import traceback
from pathlib import Path

import torch

from neuroprop.config import ExperimentConfig
from neuroprop.errors import NeuropropError
from neuroprop.training.trainer import Trainer

LOG = "train.log"
THREADS = 1
"""torch threads per run: one per Ray worker (each task asks Ray for one CPU)."""


def one_line(error: BaseException) -> str:
    """An error as one line: its message (a NeuropropError's is one already), else its type
    and the first line of its message."""
    if isinstance(error, NeuropropError):
        return str(error)
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def train_run(config: ExperimentConfig, run_dir: str, data_dir: str | None) -> str | None:
    """Train (or resume) the run in ``run_dir``; None when it finished, else the error line."""
    torch.set_num_threads(THREADS)
    path = Path(run_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with open(path / LOG, "a") as log, contextlib.redirect_stderr(log):
            try:
                Trainer(config, path, data_dir=data_dir, progress=False).run(resume=True)
            except Exception as error:
                if not isinstance(error, NeuropropError):
                    traceback.print_exc(file=log)
                print(f"error: {one_line(error)}", file=log)
                raise
    except Exception as error:
        return one_line(error)
    return None
