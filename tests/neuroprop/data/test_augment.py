"""Random translation of training batches (``dataset.shift``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from neuroprop.data import Split, load_dataset
from neuroprop.data.augment import random_shift


def moved(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``image`` (C, H, W) moved down by dy and right by dx, zero fill (the reference)."""
    height, width = image.shape[1:]
    pad = max(abs(dy), abs(dx))
    padded = F.pad(image, (pad, pad, pad, pad))
    return padded[:, pad - dy:pad - dy + height, pad - dx:pad - dx + width]


def offset_of(original: torch.Tensor, shifted: torch.Tensor, shift: int) -> tuple[int, int]:
    matches = [(dy, dx) for dy in range(-shift, shift + 1) for dx in range(-shift, shift + 1)
               if torch.equal(moved(original, dy, dx), shifted)]
    assert len(matches) == 1, matches
    return matches[0]


def distinct_images(batch: int, channels: int = 2, size: int = 6) -> torch.Tensor:
    """uint8 images whose pixels are all different and non-zero (so an offset is unique)."""
    values = torch.randperm(255, generator=torch.Generator().manual_seed(0))[:channels * size
                                                                             * size] + 1
    base = values.to(torch.uint8).view(1, channels, size, size)
    return base.repeat(batch, 1, 1, 1)


def test_each_image_moves_by_its_own_offset_within_the_range_with_zero_fill():
    x = distinct_images(400)
    out = random_shift(x, 2, torch.Generator().manual_seed(1))
    assert out.dtype == torch.uint8 and out.shape == x.shape
    offsets = [offset_of(x[b], out[b], 2) for b in range(len(x))]
    assert set(offsets) == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}
    assert torch.equal(x, distinct_images(400))  # the input is not modified


def test_no_shift_returns_the_batch_and_a_seeded_generator_repeats_the_offsets():
    x = distinct_images(8)
    assert random_shift(x, 0) is x
    first = random_shift(x, 1, torch.Generator().manual_seed(5))
    again = random_shift(x, 1, torch.Generator().manual_seed(5))
    assert torch.equal(first, again) and not torch.equal(first, x)


def test_split_batches_shift_training_images_only_when_asked():
    digits = load_dataset("digits", val_fraction=0.1, seed=0)
    split: Split = digits.train
    plain = list(split.batches(64, shuffle=False))
    same = list(split.batches(64, shuffle=False, shift=0))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(plain, same, strict=True))
    shifted = list(split.batches(64, shuffle=False, shift=1,
                                 generator=torch.Generator().manual_seed(0)))
    assert all(torch.equal(a[1], b[1]) for a, b in zip(plain, shifted, strict=True))
    x_plain = torch.cat([b[0] for b in plain])
    x_shifted = torch.cat([b[0] for b in shifted])
    changed = (x_plain != x_shifted).flatten(1).any(1).float().mean()
    assert changed > 0.8  # 8 of the 9 offsets move an image
    # the same pixels, moved: the ink of an image is kept unless it is pushed out of view
    assert float(x_shifted.sum()) <= float(x_plain.sum())
    assert float(x_shifted.sum()) > 0.9 * float(x_plain.sum())
