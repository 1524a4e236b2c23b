"""Reading IDX files, the format of MNIST and Fashion-MNIST (plain or gzipped).

Layout: two zero bytes, a type code (0x08 = unsigned byte), the number of
dimensions d, then d big-endian uint32 sizes, then prod(sizes) values.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from neuroprop.errors import NeuropropError

_UNSIGNED_BYTE = 0x08


def read_idx(dataset: str, path: Path) -> np.ndarray:
    """The uint8 array stored in an IDX file; a ``.gz`` name is decompressed first."""
    def corrupt(detail: str) -> NeuropropError:
        return NeuropropError(f"{dataset}: {path} is not a valid IDX file ({detail}); replace "
                              "it with an intact copy, or delete it to download it again")

    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                raw = handle.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise corrupt(" ".join(str(error).split()) or type(error).__name__) from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != _UNSIGNED_BYTE:
        raise corrupt(f"bad magic number {raw[:4].hex() or 'none'}, expected 000008xx")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise corrupt("truncated header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(shape)  # a Python int: sizes near 2**32 cannot overflow it
    if len(raw) - header != expected:
        raise corrupt(f"{len(raw) - header} data bytes, the header announces {expected} "
                      f"for shape {shape}; truncated?")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
