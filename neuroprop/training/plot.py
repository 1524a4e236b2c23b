"""Learning curves: validation accuracy per epoch, several runs on one figure (paper Fig. 5)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backend_bases import FigureCanvasBase  # noqa: E402

from neuroprop.errors import NeuropropError  # noqa: E402
from neuroprop.training.checkpoint import atomic_write_bytes  # noqa: E402
from neuroprop.training.metrics import read_history  # noqa: E402


def image_format(out: Path) -> str:
    """The image format named by ``out``'s extension; one line if matplotlib has none."""
    formats = sorted(FigureCanvasBase.get_supported_filetypes())
    extension = out.suffix.lower().lstrip(".")
    if extension not in formats:
        raise NeuropropError(f"{out}: unknown image format {extension or '(no extension)'!r}; "
                             f"end the name in one of .{', .'.join(formats)}")
    return extension


def plot_learning_curves(runs: dict[str, Path], out: Path) -> Path:
    """Plot validation accuracy against epoch for each ``label -> run_dir`` and save ``out``
    (atomically, in the format its extension names)."""
    fmt = image_format(out)
    histories = {label: [row for row in read_history(Path(run_dir) / "metrics.jsonl")
                         if row.get("event") == "epoch"] for label, run_dir in runs.items()}
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, history in histories.items():
        ax.plot([row["epoch"] for row in history],
                [100 * row["val_accuracy"] for row in history], label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        atomic_write_bytes(out, lambda handle: fig.savefig(handle, format=fmt, dpi=120))
    finally:
        plt.close(fig)
    return out
