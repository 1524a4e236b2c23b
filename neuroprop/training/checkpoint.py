"""Checkpoint files: atomic to write, safe to read.

A crash mid-write never leaves a half-written checkpoint (temp file, fsync, rename). A
checkpoint is read with ``torch.load(weights_only=True)``: tensors, numbers, strings and
containers only, so a crafted file cannot run code. numpy arrays, which checkpoints of
older versions hold (the numpy RNG state), are allowed too: numpy's array reconstruction
builds arrays and calls nothing else.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuroprop.errors import NeuropropError

_MULTIARRAY = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
SAFE_NUMPY = (np.ndarray, np.dtype, np.dtype("uint32").__class__, _MULTIARRAY._reconstruct)
"""What an older checkpoint's numpy RNG state needs beyond weights_only's defaults."""


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
        with torch.serialization.safe_globals(list(SAFE_NUMPY)):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        raise NeuropropError(
            f"{path}: corrupt checkpoint ({type(err).__name__}); restore it or train again"
        ) from None
    if not isinstance(state, dict) or "model" not in state or "network" not in state:
        raise NeuropropError(f"{path}: not a neuroprop checkpoint; train again")
    return state
