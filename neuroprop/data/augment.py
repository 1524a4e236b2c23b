"""Training-time augmentation of raw image batches.

Random translation (``dataset.shift``): each image of a batch moves by its own
(dy, dx), drawn uniformly from {-s, ..., s}^2, and the pixels it uncovers are 0:

    out[b, c, i, j] = x[b, c, i - dy_b, j - dx_b]   (0 where that falls outside the image)

It works on the raw uint8 values, so a shifted batch stays exactly representable in
the input encoding the hardware uses. Only training batches are shifted; validation
and test samples are the files' own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def random_shift(x: Tensor, shift: int, generator: torch.Generator | None = None) -> Tensor:
    """Translate each image of ``x`` (B, C, H, W) by its own random (dy, dx) in
    [-shift, shift]^2 pixels, filling with 0 (see the module docstring)."""
    if shift == 0:
        return x
    batch, _, height, width = x.shape
    padded = F.pad(x, (shift, shift, shift, shift))
    # a window of the padded image starting at (shift - dy, shift - dx) is x moved by (dy, dx)
    start = torch.randint(0, 2 * shift + 1, (2, batch), generator=generator)
    rows = (start[0, :, None] + torch.arange(height))[:, :, None]  # (B, H, 1)
    cols = (start[1, :, None] + torch.arange(width))[:, None, :]   # (B, 1, W)
    moved = padded[torch.arange(batch)[:, None, None], :, rows, cols]  # (B, H, W, C)
    return moved.permute(0, 3, 1, 2).contiguous()
