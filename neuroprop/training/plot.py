"""Learning curves: validation accuracy per epoch, several runs on one figure (paper Fig. 5)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from neuroprop.training.metrics import read_history  # noqa: E402


def plot_learning_curves(runs: dict[str, Path], out: Path) -> Path:
    """Plot validation accuracy against epoch for each ``label -> run_dir`` and save ``out``."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, run_dir in runs.items():
        history = [row for row in read_history(Path(run_dir) / "metrics.jsonl")
                   if row.get("event") == "epoch"]
        ax.plot([row["epoch"] for row in history],
                [100 * row["val_accuracy"] for row in history], label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
