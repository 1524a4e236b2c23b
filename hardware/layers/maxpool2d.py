"""``maxpool2d``: the maximum over each ``kernel`` window moved by ``stride``, channel by
channel (no padding in an export).

On the chip: one neuron per output and one unit-weight synapse (with a target index)
per window tap. No lava-nc 0.10 process computes a window maximum, so the Lava
backend refuses it (the emulator computes it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hardware.layers.base import Footprint, ShapeKind, Storage
from hardware.layers.window import check_window, patch_elements, patches

if TYPE_CHECKING:
    from hardware.graph import Layer

MAXPOOL_REFUSAL = (
    "max-pooling cannot be expressed with lava-nc 0.10's processes; export a net without maxpool2d"
)
MAXPOOL_SPIKING_REFUSAL = (
    "max-pooling of binary spikes routes no usable feedback and is refused in spiking nets; "
    "export a spiking net without maxpool2d"
)


class MaxPool2d(ShapeKind):
    name = "maxpool2d"
    lava_refusal = MAXPOOL_REFUSAL
    substrate_refusals = {"spiking": MAXPOOL_SPIKING_REFUSAL}

    def check(self, layer: Layer) -> str | None:
        return check_window(layer, padding_allowed=False, keeps_channels=True)

    def footprint(self, layer: Layer) -> Footprint:
        kh, kw = layer.kernel
        neurons = int(np.prod(layer.out_shape))
        return Footprint(neurons, neurons * kh * kw, neurons * kh * kw, Storage.SPARSE)

    def work_elements(self, layer: Layer) -> int:
        return max(super().work_elements(layer), patch_elements(layer))

    def forward(self, layer: Layer, s: np.ndarray) -> np.ndarray:
        """Window maxima; padding (if any) never wins (-inf, or the dtype's minimum)."""
        n = len(s)
        kh, kw = layer.kernel
        low = -np.inf if s.dtype.kind == "f" else np.iinfo(s.dtype).min
        cols = patches(s, layer, pad_value=low)
        return cols.reshape(n, layer.in_shape[0], kh * kw, -1).max(axis=2)
