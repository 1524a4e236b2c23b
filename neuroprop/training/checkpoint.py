"""Atomic checkpoint files: a crash mid-write never leaves a half-written checkpoint."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from neuroprop.errors import NeuropropError


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Call ``write(fileobj)`` on a temp file beside ``path``, fsync it, then rename it over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda handle: handle.write(text.encode()))


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` with torch.save, atomically."""
    atomic_write_bytes(path, lambda handle: torch.save(state, handle))


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint, with one-line errors for a missing or corrupt file."""
    if not path.is_file():
        raise NeuropropError(f"{path}: no checkpoint here; train first with 'neuroprop train'")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for a damaged file
        raise NeuropropError(
            f"{path}: corrupt checkpoint ({type(err).__name__}); restore it or train again"
        ) from None
    if not isinstance(state, dict) or "model" not in state or "network" not in state:
        raise NeuropropError(f"{path}: not a neuroprop checkpoint; train again")
    return state
