"""Machine-readable run logs: one JSON object per line (``metrics.jsonl``)."""

from __future__ import annotations

import json
from pathlib import Path

from neuroprop.training.checkpoint import atomic_write_text


def write_history(path: Path, history: list[dict]) -> None:
    """Rewrite the whole log from ``history`` (the checkpoint is the source of truth)."""
    atomic_write_text(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in history))


def read_history(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def time_to_accuracy(history: list[dict], thresholds: list[float]) -> list[dict]:
    """For each threshold t, the first epoch e whose validation accuracy reached it and the
    seconds until then, s(e) = sum of ``seconds`` (training + validation) of epochs 1..e;
    ``epoch`` and ``seconds`` are None when no epoch of ``history`` reached t."""
    epochs = [row for row in history if row.get("event") == "epoch"]
    result = []
    for threshold in thresholds:
        elapsed = 0.0
        reached = {"epoch": None, "seconds": None}
        for row in epochs:
            elapsed += row["seconds"]
            if row["val_accuracy"] >= threshold:
                reached = {"epoch": row["epoch"], "seconds": elapsed}
                break
        result.append({"threshold": threshold, **reached})
    return result
