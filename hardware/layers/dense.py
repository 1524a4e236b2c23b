"""``dense``: a = W s with ``weight`` (out, in) over 1-d shapes (in,) -> (out,).

Fixed point (Lava's ``Dense``, ``hardware.loihi``)::

    a = wrap32(W_eff s) << e  (wrapping)   or   wrap32(W_eff s) >> -e  (floor)

with W_eff the sign-mode clipped and truncated mantissas. On the chip: a full
weight matrix (in * out synapses, no index).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hardware import loihi
from hardware.layers.base import (
    Footprint,
    Storage,
    WeightKind,
    exact_matmul,
    lava_weights,
    row_bound,
)

if TYPE_CHECKING:
    from lava.magma.core.process.ports.ports import OutPort
    from lava.proc.dense.process import Dense as LavaDense

    from hardware.graph import Layer


class Dense(WeightKind):
    name = "dense"

    def check(self, layer: Layer) -> str | None:
        in_shape, out_shape = tuple(layer.in_shape), tuple(layer.out_shape)
        if len(in_shape) != 1 or len(out_shape) != 1:
            return (
                f"a dense layer needs 1-d shapes, got {in_shape} -> {out_shape} "
                "(add a flatten layer before it)"
            )
        return None

    def weight_shape(
        self,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...],
        kernel: tuple[int, int] | None,
    ) -> tuple[int, ...]:
        return (out_shape[0], in_shape[0])

    def weight_axes(self) -> tuple[str, ...]:
        return ("outputs", "inputs")

    def footprint(self, layer: Layer) -> Footprint:
        synapses = layer.in_shape[0] * layer.out_shape[0]
        return Footprint(layer.out_shape[0], synapses, synapses, Storage.MATRIX)

    def forward_float(self, layer: Layer, s: np.ndarray) -> np.ndarray:
        return s @ np.asarray(layer.weight, np.float64).T

    def fixed_weights(self, layer: Layer) -> np.ndarray:
        return loihi.sign_mode_effective_weights(layer.weight_int).astype(np.int64)

    def forward_fixed(
        self, layer: Layer, s: np.ndarray, weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        exact = exact_matmul(s, weights.T, row_bound(weights))
        return exact, loihi.apply_weight_exp(exact, int(layer.weight_exp))

    def lower(
        self, layer: Layer, fixed: bool, port: OutPort, message_bits: int = loihi.MESSAGE_BITS
    ) -> tuple[LavaDense, OutPort]:
        from lava.proc.dense.process import Dense as LavaDense

        weights, exp = lava_weights(layer, fixed)
        conn = LavaDense(weights=weights, num_message_bits=message_bits, weight_exp=exp)
        port.connect(conn.s_in)
        return conn, conn.a_out
