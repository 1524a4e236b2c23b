"""The containers the trainer and the exporter read: splits of raw 8-bit samples.

A split keeps its inputs as the raw uint8 values of the files (what the hardware
input encoding uses) and converts a batch to float only when it is drawn:

    x_float = x_raw * scale      (scale = 1/255 for images, 1/16 for the 8x8 digits)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from neuroprop.data.augment import random_shift
from neuroprop.errors import NeuropropError


class RawArrays(NamedTuple):
    """What a format loader returns: the official train and test sets as numpy arrays.

    Images are uint8 (N, C, H, W); labels int64 (N,).
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


@dataclass
class Split:
    """One split: raw uint8 inputs ``x`` (N, C, H, W), int64 labels ``y`` (N,), and ``scale``.

    ``scale`` is the dataset's: a batch's float input is ``x * scale``.
    """

    x: torch.Tensor
    y: torch.Tensor
    scale: float

    def __post_init__(self) -> None:
        if self.x.dtype != torch.uint8 or self.x.dim() != 4:
            raise ValueError(f"Split.x must be uint8 (N, C, H, W), got {self.x.dtype} "
                             f"{tuple(self.x.shape)}")
        if self.y.dtype != torch.int64 or self.y.dim() != 1 or len(self.y) != len(self.x):
            raise ValueError(f"Split.y must be int64 (N,) with N = {len(self.x)}, got "
                             f"{self.y.dtype} {tuple(self.y.shape)}")

    def __len__(self) -> int:
        return self.y.shape[0]

    def batches(self, batch_size: int, shuffle: bool,
                generator: torch.Generator | None = None,
                shift: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x_raw * scale as float32, y)`` batches covering every sample once.

        The last batch holds the remainder. With ``shuffle`` the order is a fresh
        ``torch.randperm`` drawn from ``generator`` (the global RNG when None). With
        ``shift`` > 0 each image moves by up to ``shift`` pixels
        (``neuroprop.data.augment.random_shift``, offsets drawn from the same generator).
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise NeuropropError(f"batch size must be a positive integer, got {batch_size!r}; "
                                 "set it to 1 or more")
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else None
        for start in range(0, n, batch_size):
            index = slice(start, start + batch_size) if order is None else (
                order[start:start + batch_size])
            x = random_shift(self.x[index], shift, generator)
            yield x.float().mul_(self.scale), self.y[index]


@dataclass
class Dataset:
    """A dataset's three splits and what a network needs to know about it.

    ``val`` is held out from the official training data; ``test`` is the official
    test set (for digits, a fixed split of the 1797 samples). ``scale`` is shared
    by all three splits (each also carries it, so ``Split.batches`` stands alone).
    """

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, int, int]
    scale: float

    def __post_init__(self) -> None:
        for part, split in (("train", self.train), ("val", self.val), ("test", self.test)):
            if split.scale != self.scale or tuple(split.x.shape[1:]) != self.input_shape:
                raise ValueError(f"{self.name}: {part} split has scale {split.scale} and "
                                 f"shape {tuple(split.x.shape[1:])}, the dataset "
                                 f"{self.scale} and {self.input_shape}")
