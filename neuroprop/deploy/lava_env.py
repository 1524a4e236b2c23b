"""Runs the hardware layer inside the Lava environment (``.venv-lava``, Python 3.10).

lava-nc runs only on Python 3.10 and must never see torch, so the main environment
hands it an export folder and a file of integer inputs and reads back Q-values.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuroprop.errors import NeuropropError

REPO_ROOT = Path(__file__).resolve().parents[2]


def lava_python() -> Path:
    """The Lava environment's interpreter: $NEUROPROP_LAVA_PYTHON or .venv-lava at the repo root."""
    configured = os.environ.get("NEUROPROP_LAVA_PYTHON")
    path = Path(configured) if configured else REPO_ROOT / ".venv-lava" / "bin" / "python"
    if not path.exists():
        raise NeuropropError(
            f"Lava environment not found ({path}); run 'bash scripts/setup.sh' "
            "or set NEUROPROP_LAVA_PYTHON to a Python 3.10 with lava-nc"
        )
    return path


@dataclass
class LavaRun:
    q: np.ndarray
    timing: dict


def run_in_lava_env(export_dir: Path, x_int: np.ndarray, use_float: bool = False,
                    dense_model: str = "lava", per_sample: bool = False) -> LavaRun:
    """Stream ``x_int`` (N, C, H, W) through the export on Lava's simulator; Q-values back."""
    with tempfile.TemporaryDirectory(prefix="neuroprop-lava-") as tmp:
        inputs, q_path, timing_path = (Path(tmp) / name for name in
                                       ("inputs.npy", "q.npy", "timing.json"))
        np.save(inputs, x_int)
        command = [str(lava_python()), "-m", "hardware.run", str(export_dir),
                   "--inputs", str(inputs), "--out", str(q_path), "--timing", str(timing_path)]
        command += ["--float"] if use_float else ["--dense-model", dense_model]
        command += ["--per-sample"] if per_sample else []
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            reason = lines[-1] if lines else f"exit status {done.returncode}"
            raise NeuropropError(f"Lava run failed: {reason}")
        return LavaRun(q=np.load(q_path), timing=json.loads(timing_path.read_text()))
