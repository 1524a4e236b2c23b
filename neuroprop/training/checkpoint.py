"""Checkpoint files: atomic to write, safe to read.

A crash mid-write never leaves a half-written checkpoint (temp file, fsync, rename). A
checkpoint (a zip archive) has the CRC-32 of each of its records checked first (torch
does not check them: a flipped bit in the weights would load), then it is read with
``torch.load(weights_only=True)``: tensors, numbers, strings and
containers only, so a crafted file cannot run code. numpy arrays, which checkpoints of
older versions hold (the numpy RNG state), are allowed too: numpy's array reconstruction
builds arrays and calls nothing else.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuroprop.errors import NeuropropError

_MULTIARRAY = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
SAFE_NUMPY = (np.ndarray, np.dtype, np.dtype("uint32").__class__, _MULTIARRAY._reconstruct)
"""What an older checkpoint's numpy RNG state needs beyond weights_only's defaults."""


def cannot_write(path: Path, error: OSError) -> NeuropropError:
    """The one-line error for a write the file system refused (read-only, full, ...)."""
    return NeuropropError(f"cannot write {path} ({error.strerror or type(error).__name__}); "
                          "make room on the disk or choose a writable folder")


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Call ``write(fileobj)`` on a temp file beside ``path``, fsync it, then rename it over.

    A refused write (read-only folder, full disk) raises ``cannot_write``'s one line and
    leaves the old file as it was."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise cannot_write(path, error) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        raise cannot_write(path, error) from None
    finally:
        with contextlib.suppress(OSError):
            Path(tmp).unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda handle: handle.write(text.encode()))


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` with torch.save, atomically (serialised in memory first: torch
    reports a failed file write as a RuntimeError, a plain write as an OSError)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, lambda handle: handle.write(buffer.getbuffer()))


DAMAGE = (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError)
"""What restoring a checkpoint that loads but holds the wrong things raises (torch's
``load_state_dict`` alone raises RuntimeError, KeyError, ValueError or TypeError)."""


def damaged(path: Path, error: BaseException) -> NeuropropError:
    """The one-line error for a checkpoint that loads but whose contents do not fit."""
    detail = " ".join(str(error).split()) or type(error).__name__
    detail = detail if len(detail) <= 160 else detail[:157] + "..."
    return NeuropropError(f"{path}: damaged checkpoint ({type(error).__name__}: {detail}); "
                          "restore it or train again")


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint, with one-line errors for a missing or corrupt file."""
    if not path.is_file():
        raise NeuropropError(f"{path}: no checkpoint here; train first with 'neuroprop train'")
    try:
        with zipfile.ZipFile(path) as archive:
            record = archive.testzip()
        problem = None if record is None else f"record {record} fails its CRC"
    except Exception as err:  # zipfile raises many types for a damaged archive
        problem = type(err).__name__
    if problem:
        raise NeuropropError(f"{path}: corrupt checkpoint ({problem}); restore it or train "
                             "again")
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
