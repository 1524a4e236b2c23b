"""Sliding windows, shared by conv2d, loccon2d and maxpool2d: output sizes, checks,
im2col, and the unrolled sparse matrix of a windowed layer.

Along one axis, a window of ``kernel`` taps moved by ``stride`` over an input of
``size`` padded by ``padding`` zeros on both sides gives

    out = floor((size + 2 * padding - kernel) / stride) + 1

positions; output position p reads inputs p * stride - padding + k, k = 0..kernel-1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from hardware import loihi

if TYPE_CHECKING:
    from lava.magma.core.process.ports.ports import OutPort
    from lava.proc.sparse.process import Sparse

    from hardware.graph import Layer

TapWeights = Callable[..., np.ndarray]
"""``weights(o, c, i, j, py, px)``: the weight of the tap (i, j) of input channel c for
output (o, py, px), on index grids."""


def window_output(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length along one axis: ``floor((size + 2 * padding - kernel) / stride) + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


def check_window(layer: Layer, padding_allowed: bool, keeps_channels: bool) -> str | None:
    """The first problem with a windowed layer's kernel, stride, padding and shapes.

    Kernel and stride: two positive integers; padding: two integers >= 0 (none at all
    unless ``padding_allowed``); (C, H, W) shapes; out_shape's H, W as the window
    gives them, and its C equal to the input's when ``keeps_channels``.
    """
    for name in ("kernel", "stride"):
        value = getattr(layer, name)
        if value is None or len(value) != 2 or min(value) < 1:
            return f"{name} must be two positive integers, got {value}"
    padding = tuple(layer.padding) if layer.padding is not None else (0, 0)
    if len(padding) != 2 or min(padding) < 0:
        return f"padding must be two integers >= 0, got {padding}"
    if not padding_allowed and padding != (0, 0):
        return f"{layer.type} supports no padding (valid only), got {padding}"
    in_shape, out_shape = tuple(layer.in_shape), tuple(layer.out_shape)
    if len(in_shape) != 3 or len(out_shape) != 3:
        return f"{layer.type} needs (C, H, W) shapes, got {in_shape} -> {out_shape}"
    spatial = tuple(
        window_output(size, k, s, p)
        for size, k, s, p in zip(in_shape[1:], layer.kernel, layer.stride, padding, strict=True)
    )
    channels = in_shape[0] if keeps_channels else out_shape[0]
    if out_shape != (channels, *spatial) or min(spatial) < 1:
        return (
            f"input {in_shape} with kernel {tuple(layer.kernel)}, stride "
            f"{tuple(layer.stride)}, padding {padding} gives {(channels, *spatial)}, "
            f"not {out_shape}"
        )
    return None


def patches(s: np.ndarray, layer: Layer, pad_value: float = 0) -> np.ndarray:
    """im2col: (N, C, H, W) -> (N, C*kh*kw, out_h*out_w), K in torch ``unfold`` order."""
    kh, kw = layer.kernel
    sh, sw = layer.stride or (1, 1)
    ph, pw = layer.padding or (0, 0)
    if ph or pw:
        s = np.pad(s, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    windows = np.lib.stride_tricks.sliding_window_view(s, (kh, kw), axis=(2, 3))
    windows = windows[:, :, ::sh, ::sw]  # (N, C, oh, ow, kh, kw)
    n, c, oh, ow = windows.shape[:4]
    return windows.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, oh * ow)


def patch_elements(layer: Layer) -> int:
    """Elements of one sample's im2col array, doubled for the copy a product makes."""
    kh, kw = layer.kernel
    return 2 * layer.in_shape[0] * kh * kw * int(np.prod(layer.out_shape[1:]))


def sparse_connection(
    layer: Layer,
    weights: TapWeights,
    weight_exp: int,
    port: OutPort,
    message_bits: int = loihi.MESSAGE_BITS,
) -> tuple[Sparse, OutPort]:
    """A Lava ``Sparse`` holding the windowed layer as an (out, in) matrix over C,H,W-flat
    vectors, fed by ``port`` (``num_message_bits=message_bits``).

    Output (o, py, px) reads input (c, py*sh + i - ph, px*sw + j - pw) with weight
    ``weights(o, c, i, j, py, px)``; taps that fall into the zero padding are left out.
    """
    from lava.proc.sparse.process import Sparse
    from scipy.sparse import csr_matrix

    channels, height, width = layer.in_shape
    out_channels, out_h, out_w = layer.out_shape
    kh, kw = layer.kernel
    (sh, sw), (ph, pw) = layer.stride or (1, 1), layer.padding or (0, 0)
    o, c, i, j, py, px = np.meshgrid(
        np.arange(out_channels),
        np.arange(channels),
        np.arange(kh),
        np.arange(kw),
        np.arange(out_h),
        np.arange(out_w),
        indexing="ij",
    )
    y, x = py * sh + i - ph, px * sw + j - pw
    inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
    values = weights(o, c, i, j, py, px)
    rows = (o * out_h + py) * out_w + px
    cols = (c * height + y) * width + x
    shape = (out_channels * out_h * out_w, channels * height * width)
    matrix = csr_matrix((values[inside], (rows[inside], cols[inside])), shape=shape)
    conn = Sparse(weights=matrix, num_message_bits=message_bits, weight_exp=weight_exp)
    port.connect(conn.s_in)
    return conn, conn.a_out
