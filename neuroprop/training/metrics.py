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
