"""``loccon2d``: locally connected (unshared weights), valid windows, ``stride`` as given.

``weight`` (L, O, C*kh*kw) with L = out_h*out_w output positions in row-major order
and the K = C*kh*kw axis in ``torch.nn.functional.unfold`` order::

    a[o, l] = sum_k W[l, o, k] * patch_l(s)[k]

Fixed point: a ``Sparse`` holding the unshared weights as one (out, in) matrix, so
``wrap32(W_eff s) << e`` or ``>> -e`` (``hardware.loihi``). On the chip: L*O*C*kh*kw
synapses, each with a target index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hardware import loihi
from hardware.layers.base import EXACT_FLOAT_LIMIT, Footprint, Storage, WeightKind, lava_weights
from hardware.layers.window import check_window, patch_elements, patches, sparse_connection

if TYPE_CHECKING:
    from lava.magma.core.process.ports.ports import OutPort
    from lava.proc.sparse.process import Sparse

    from hardware.graph import Layer


def loccon_sum(w: np.ndarray, patches: np.ndarray) -> np.ndarray:
    """a[n, o, l] = sum_k w[l, o, k] * patches[n, k, l] as one batched matmul over l."""
    per_position = np.matmul(patches.transpose(2, 0, 1), w.transpose(0, 2, 1))  # (L, N, O)
    return per_position.transpose(1, 2, 0)


class LocCon2d(WeightKind):
    name = "loccon2d"

    def check(self, layer: Layer) -> str | None:
        return check_window(layer, padding_allowed=False, keeps_channels=False)

    def weight_shape(
        self,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...],
        kernel: tuple[int, int] | None,
    ) -> tuple[int, ...]:
        kh, kw = kernel
        out_channels, out_h, out_w = out_shape
        return (out_h * out_w, out_channels, in_shape[0] * kh * kw)

    def weight_axes(self) -> tuple[str, ...]:
        return ("output positions", "out channels", "in channels x kernel taps")

    def footprint(self, layer: Layer) -> Footprint:
        kh, kw = layer.kernel
        neurons = int(np.prod(layer.out_shape))
        synapses = neurons * layer.in_shape[0] * kh * kw
        return Footprint(neurons, synapses, synapses, Storage.SPARSE)

    def work_elements(self, layer: Layer) -> int:
        return max(super().work_elements(layer), patch_elements(layer))

    def forward_float(self, layer: Layer, s: np.ndarray) -> np.ndarray:
        return loccon_sum(np.asarray(layer.weight, np.float64), patches(s, layer))

    def fixed_weights(self, layer: Layer) -> np.ndarray:
        return loihi.sign_mode_effective_weights(layer.weight_int).astype(np.int64)

    def forward_fixed(
        self, layer: Layer, s: np.ndarray, weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        cols = patches(s, layer)
        bound = float(np.abs(weights).sum(axis=2).max(initial=0)) * float(np.abs(s).max(initial=0))
        if bound < EXACT_FLOAT_LIMIT:
            exact = np.rint(loccon_sum(weights.astype(np.float64), cols.astype(np.float64)))
            exact = exact.astype(np.int64)
        else:
            exact = np.einsum("lok,nkl->nol", weights, cols.astype(np.int64))
        return exact, loihi.apply_weight_exp(exact, int(layer.weight_exp))

    def lower(
        self, layer: Layer, fixed: bool, port: OutPort, message_bits: int = loihi.MESSAGE_BITS
    ) -> tuple[Sparse, OutPort]:
        weight, exp = lava_weights(layer, fixed)
        out_w = layer.out_shape[2]
        kh, kw = layer.kernel

        def tap(o, c, i, j, py, px):
            return weight[py * out_w + px, o, (c * kh + i) * kw + j]

        return sparse_connection(layer, tap, exp, port, message_bits)
