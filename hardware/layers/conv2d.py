"""``conv2d``: PyTorch's correlation, ``weight`` (O, C, kh, kw), ``stride``, zero ``padding``.

    a[o, y, x] = sum_{c,i,j} W[o, c, i, j] * s[c, y*sh + i - ph, x*sw + j - pw]

Two Lava lowerings (``runs_on_lava_conv``), and the emulator follows the one taken:

- exponent 0 in fixed point, and always in floating point: Lava's ``Conv``, whose
  fixed-point model sends ``wrap24(int32(W s))`` and ignores ``weight_exp``; its
  kernel is a true convolution in W,H,C order, so ``lava_w[o, x, y, c] =
  w[o, c, kh-1-y, kw-1-x]`` and the ports are re-ordered C,H,W <-> W,H,C by virtual
  transposes;
- any other fixed-point exponent: a ``Sparse`` holding the unrolled kernel, with the
  Dense/Sparse arithmetic ``wrap32(W_eff s) << e`` or ``>> -e`` (``hardware.loihi``).

On the chip: the shared kernel O*C*kh*kw, stored once per core's worth of neurons; its
connections (input-output pairs it touches, padding excluded) are counted apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hardware import loihi
from hardware.layers.base import (
    Footprint,
    Storage,
    WeightKind,
    exact_matmul_left,
    lava_weights,
    row_bound,
)
from hardware.layers.window import check_window, patch_elements, patches, sparse_connection

if TYPE_CHECKING:
    from lava.magma.core.process.ports.ports import OutPort
    from lava.magma.core.process.process import AbstractProcess

    from hardware.graph import Layer


def runs_on_lava_conv(layer: Layer, fixed: bool = True) -> bool:
    """Whether Lava's ``Conv`` carries the layer: in floating point, or at exponent 0
    (Lava 0.10's fixed-point Conv ignores ``weight_exp``; a Sparse applies it)."""
    return not fixed or int(layer.weight_exp) == 0


def connections(layer: Layer) -> int:
    """(input, output) pairs the kernel connects, taps on zero padding excluded.

    Separable per axis: output position o touches the taps k with
    0 <= o*stride - padding + k < size.
    """
    per_axis = []
    for size, out, kernel, stride, padding in zip(
        layer.in_shape[1:],
        layer.out_shape[1:],
        layer.kernel,
        layer.stride,
        layer.padding or (0, 0),
        strict=True,
    ):
        taps = 0
        for o in range(out):
            start = o * stride - padding
            taps += min(start + kernel, size) - max(start, 0)
        per_axis.append(taps)
    return layer.out_shape[0] * layer.in_shape[0] * per_axis[0] * per_axis[1]


class Conv2d(WeightKind):
    name = "conv2d"

    def check(self, layer: Layer) -> str | None:
        return check_window(layer, padding_allowed=True, keeps_channels=False)

    def weight_shape(
        self,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...],
        kernel: tuple[int, int] | None,
    ) -> tuple[int, ...]:
        kh, kw = kernel
        return (out_shape[0], in_shape[0], kh, kw)

    def weight_axes(self) -> tuple[str, ...]:
        return ("out channels", "in channels", "kernel rows", "kernel columns")

    def footprint(self, layer: Layer) -> Footprint:
        kh, kw = layer.kernel
        synapses = layer.out_shape[0] * layer.in_shape[0] * kh * kw
        neurons = int(np.prod(layer.out_shape))
        return Footprint(neurons, synapses, connections(layer), Storage.SHARED)

    def work_elements(self, layer: Layer) -> int:
        return max(super().work_elements(layer), patch_elements(layer))

    def forward_float(self, layer: Layer, s: np.ndarray) -> np.ndarray:
        w = np.asarray(layer.weight, np.float64)
        return np.matmul(w.reshape(w.shape[0], -1), patches(s, layer))

    def fixed_weights(self, layer: Layer) -> np.ndarray:
        w = np.asarray(layer.weight_int)
        if runs_on_lava_conv(layer):
            return w.astype(np.int64)  # Conv uses its weights as given
        return loihi.sign_mode_effective_weights(w).astype(np.int64)

    def forward_fixed(
        self, layer: Layer, s: np.ndarray, weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        w2 = weights.reshape(weights.shape[0], -1)
        exact = exact_matmul_left(w2, patches(s, layer), row_bound(w2))
        if runs_on_lava_conv(layer):
            return exact, loihi.conv_output(exact)
        return exact, loihi.apply_weight_exp(exact, int(layer.weight_exp))

    def lower(
        self, layer: Layer, fixed: bool, port: OutPort, message_bits: int = loihi.MESSAGE_BITS
    ) -> tuple[AbstractProcess, OutPort]:
        weight, exp = lava_weights(layer, fixed)
        if not runs_on_lava_conv(layer, fixed):

            def tap(o, c, i, j, py, px):
                return weight[o, c, i, j]

            return sparse_connection(layer, tap, exp, port, message_bits)
        from lava.proc.conv.process import Conv

        channels, height, width = layer.in_shape
        out_channels, out_h, out_w = layer.out_shape
        kernel = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))
        (sh, sw), (ph, pw) = layer.stride or (1, 1), layer.padding or (0, 0)
        conv = Conv(
            weight=kernel,
            input_shape=(width, height, channels),
            padding=(pw, ph),
            stride=(sw, sh),
            num_message_bits=message_bits,
        )
        port.reshape((channels, height, width)).transpose([2, 1, 0]).connect(conv.s_in)
        out_port = conv.a_out.transpose([2, 1, 0]).reshape((out_channels * out_h * out_w,))
        return conv, out_port
