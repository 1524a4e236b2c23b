"""Machine-readable run logs: one JSON object per line (``metrics.jsonl``), and the
run's result (``summary.json``)."""

from __future__ import annotations

import json
from pathlib import Path

from neuroprop.errors import NeuropropError
from neuroprop.training.checkpoint import atomic_write_text

DAMAGED = "restore it, or continue the run with 'neuroprop train --resume' to rewrite it"


def write_history(path: Path, history: list[dict]) -> None:
    """Rewrite the whole log from ``history`` (the checkpoint is the source of truth)."""
    atomic_write_text(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in history))


def read_history(path: Path) -> list[dict]:
    """The rows of a ``metrics.jsonl`` (none if it is absent); a line that is not a JSON
    object, or an epoch row without a numeric epoch and val_accuracy, is one error line."""
    if not path.is_file():
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise NeuropropError(f"{path}: unreadable ({error}); {DAMAGED}") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if not isinstance(row, dict) or row.get("event") == "epoch" and not all(
                _is_number(row.get(key)) for key in ("epoch", "val_accuracy")):
            raise NeuropropError(f"{path}: line {number} is not a metrics row (a JSON object; "
                                 f"epoch rows with a numeric epoch and val_accuracy); {DAMAGED}")
        rows.append(row)
    return rows


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


def read_summary(path: Path) -> dict:
    """A run's ``summary.json``: a JSON object with the strings ``rule`` and ``dataset``."""
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise NeuropropError(f"{path}: unreadable ({' '.join(str(error).split())}); restore it "
                             "or delete it (the run is then labelled by its folder)") from None
    if not isinstance(summary, dict) or not all(
            isinstance(summary.get(key), str) for key in ("rule", "dataset")):
        raise NeuropropError(f"{path}: not a neuroprop summary (a JSON object with rule and "
                             "dataset); restore it or delete it (the run is then labelled by "
                             "its folder)")
    return summary


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
