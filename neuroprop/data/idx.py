"""Reading IDX files, the format of MNIST and Fashion-MNIST (plain or gzipped).

Layout: two zero bytes, a type code (0x08 = unsigned byte), the number of
dimensions d, then d big-endian uint32 sizes, then prod(sizes) values. A file is
gzipped when it starts with gzip's magic bytes (1f 8b), whatever its name: an IDX
file starts with 00 00.
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
_GZIP_MAGIC = b"\x1f\x8b"
MAX_BYTES = 1 << 30
"""The most an IDX file may hold decompressed (1 GiB; MNIST's largest holds 47 MB)."""


def _corrupt(dataset: str, path: Path, detail: str) -> NeuropropError:
    return NeuropropError(f"{dataset}: {path} is not a valid IDX file ({detail}); replace it "
                          "with an intact copy, or delete it to download it again")


def read_idx_bytes(dataset: str, path: Path) -> bytes:
    """The IDX bytes of ``path``: decompressed when it is gzipped (by its magic bytes)."""
    try:
        with open(path, "rb") as handle:
            gzipped = handle.read(2) == _GZIP_MAGIC
        if gzipped:
            with gzip.open(path, "rb") as handle:
                raw = handle.read(MAX_BYTES + 1)
        else:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise _corrupt(dataset, path, " ".join(str(error).split()) or type(error).__name__
                       ) from None
    if len(raw) > MAX_BYTES:
        raise _corrupt(dataset, path, f"more than {MAX_BYTES} bytes")
    return raw


def parse_idx(dataset: str, path: Path, raw: bytes) -> np.ndarray:
    """The uint8 array that the IDX bytes ``raw`` (read from ``path``) hold."""
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != _UNSIGNED_BYTE:
        raise _corrupt(dataset, path, f"bad magic number {raw[:4].hex() or 'none'}, "
                                      "expected 000008xx")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise _corrupt(dataset, path, "truncated header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(shape)  # a Python int: sizes near 2**32 cannot overflow it
    if len(raw) - header != expected:
        raise _corrupt(dataset, path, f"{len(raw) - header} data bytes, the header announces "
                                      f"{expected} for shape {shape}; truncated?")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx(dataset: str, path: Path) -> np.ndarray:
    """The uint8 array stored in an IDX file, gzipped or not."""
    return parse_idx(dataset, path, read_idx_bytes(dataset, path))
