"""``flatten``: (C, H, W) -> (C*H*W,), C,H,W order. Wiring only: no neurons, no
synapses, and no Lava process (every population is already a flat C,H,W vector)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from hardware import loihi
from hardware.layers.base import Footprint, ShapeKind, Storage

if TYPE_CHECKING:
    from lava.magma.core.process.ports.ports import OutPort

    from hardware.graph import Layer


class Flatten(ShapeKind):
    name = "flatten"

    def check(self, layer: Layer) -> str | None:
        in_shape, out_shape = tuple(layer.in_shape), tuple(layer.out_shape)
        if out_shape != (math.prod(in_shape),):
            return f"flatten of {in_shape} gives ({math.prod(in_shape)},), not {out_shape}"
        return None

    def footprint(self, layer: Layer) -> Footprint:
        return Footprint(0, 0, 0, Storage.NONE)

    def forward(self, layer: Layer, s: np.ndarray) -> np.ndarray:
        return s.reshape(len(s), -1)

    def lower(
        self, layer: Layer, fixed: bool, port: OutPort, message_bits: int = loihi.MESSAGE_BITS
    ) -> tuple[None, OutPort]:
        return None, port
