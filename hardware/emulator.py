"""Numpy models of an exported network: a float64 reference and Loihi's integer arithmetic.

``forward_float`` computes the float network (layouts in ``hardware.graph``)::

    dense:    a = W s                      conv2d: a = W (*) s  (PyTorch correlation,
    loccon2d: a[o, l] = sum_k W[l, o, k] * patch_l(s)[k]          zero padding, stride)
    y = relu(a) or a;  maxpool2d: window max;  flatten: reshape

``forward_fixed`` computes, for integer inputs, exactly the integers that Lava's
``fixed_pt`` models produce (see ``hardware.loihi`` for the arithmetic)::

    dense, loccon2d, conv2d with e != 0 (Dense / Sparse):
        a = wrap32(W_eff s) << e  (wrapping)   or   wrap32(W_eff s) >> -e  (floor)
    conv2d with e == 0 (Lava's Conv):  a = wrap24(int32(W_int (*) s))
    y = a * (a > 0) (relu) or a (linear), int32

Integer products are summed as float64 BLAS matrix products whenever every partial
sum is provably below 2^53 (|W| row sums times max |s|), which makes them exact;
otherwise they fall back to int64. Samples go through in chunks that bound memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hardware import loihi
from hardware.errors import HardwareError
from hardware.graph import HardwareNetwork, Layer

EXACT_FLOAT_LIMIT = 2.0**53
"""Integers up to this magnitude are exact in float64, and so are their sums."""
CHUNK_ELEMENTS = 1 << 23
"""Largest intermediate array (elements) a chunk of samples may need."""


@dataclass
class LayerStats:
    """Fixed-point headroom of one weight layer over a batch of inputs.

    ``max_abs_sum``: largest |exact W s| before the shift (must stay below 2^31).
    ``max_abs_activation``: largest |a| after the shift (should stay below 2^23).
    ``wrapped``: how many activations differ from the exact sum shifted without any
    wraparound (the int32 sum, the int32 left shift or Conv's 24 bits overflowed).
    """

    layer: int
    max_abs_sum: int
    max_abs_activation: int
    wrapped: int


def forward_float(
    net: HardwareNetwork, x_float: np.ndarray, return_activations: bool = False
) -> np.ndarray | tuple[np.ndarray, list[np.ndarray]]:
    """Float64 forward pass with the float weights: Q-values (N, num_classes).

    ``x_float`` is (N, *input_shape). With ``return_activations`` also returns each
    layer's output, (N, *layer.out_shape), in layer order.
    """
    x = _check_inputs(net, x_float, np.float64)
    for index, layer in enumerate(net.layers):
        if layer.has_weights and layer.weight is None:
            raise HardwareError(
                f"layer {index} ({layer.type}) has no float weights; export the float network"
            )
    return _forward(net, x, _FloatArithmetic(), return_activations)


def forward_fixed(
    net: HardwareNetwork, x_int: np.ndarray, return_activations: bool = False
) -> np.ndarray | tuple[np.ndarray, list[np.ndarray]]:
    """Integer forward pass, bit-exact with Lava's fixed_pt models: int64 Q-values.

    ``x_int`` holds integer inputs (N, *input_shape) (uint8 pixels). With
    ``return_activations`` also returns each layer's int64 output in layer order.
    """
    _check_quantised(net)
    x = _check_inputs(net, x_int, np.int64)
    return _forward(net, x, _FixedArithmetic(), return_activations)


def fixed_point_stats(net: HardwareNetwork, x_int: np.ndarray) -> list[LayerStats]:
    """Headroom of every weight layer of ``forward_fixed`` over ``x_int`` (see LayerStats)."""
    _check_quantised(net)
    x = _check_inputs(net, x_int, np.int64)
    arithmetic = _FixedArithmetic(collect_stats=True)
    _forward(net, x, arithmetic, False)
    return [arithmetic.stats[i] for i in sorted(arithmetic.stats)]


def _check_quantised(net: HardwareNetwork) -> None:
    if not net.is_quantised:
        raise HardwareError(
            "the network has no integer weights; quantise it (hardware.quantize) first"
        )


def _check_inputs(net: HardwareNetwork, x: np.ndarray, dtype: type) -> np.ndarray:
    x = np.asarray(x)
    expected = tuple(net.input_shape)
    if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
        raise HardwareError(
            f"inputs have shape {x.shape}, expected (N, {', '.join(map(str, expected))}); "
            "pass one sample per row in the network's input layout"
        )
    if dtype is np.int64 and not np.issubdtype(x.dtype, np.integer):
        raise HardwareError(
            f"fixed-point inputs must be integers, got {x.dtype}; pass the raw uint8 pixels"
        )
    return x.astype(dtype, copy=False)


def _forward(
    net: HardwareNetwork, x: np.ndarray, arithmetic: _Arithmetic, return_activations: bool
) -> np.ndarray | tuple[np.ndarray, list[np.ndarray]]:
    chunk = _chunk_size(net)
    outputs: list[list[np.ndarray]] = [[] for _ in net.layers]
    for start in range(0, max(len(x), 1), chunk):
        s = x[start : start + chunk]
        for index, layer in enumerate(net.layers):
            s = _layer_forward(index, layer, s, arithmetic)
            if return_activations or index == len(net.layers) - 1:
                outputs[index].append(s)
    joined = [np.concatenate(parts) if parts else None for parts in outputs]
    q = joined[-1].reshape(len(x), -1)
    if return_activations:
        return q, joined
    return q


def _chunk_size(net: HardwareNetwork) -> int:
    """Samples per chunk so that no intermediate (im2col included) exceeds CHUNK_ELEMENTS."""
    per_sample = int(np.prod(net.input_shape))
    for layer in net.layers:
        per_sample = max(per_sample, int(np.prod(layer.out_shape)))
        if layer.type in ("conv2d", "loccon2d", "maxpool2d"):
            kh, kw = layer.kernel
            patches = layer.in_shape[0] * kh * kw * int(np.prod(layer.out_shape[1:]))
            per_sample = max(per_sample, 2 * patches)
    return max(1, CHUNK_ELEMENTS // per_sample)


def _layer_forward(index: int, layer: Layer, s: np.ndarray, arithmetic: _Arithmetic) -> np.ndarray:
    n = len(s)
    if layer.type == "flatten":
        return s.reshape(n, -1)
    if layer.type == "maxpool2d":
        return _maxpool(s, layer)
    s = s.reshape((n, *layer.in_shape))
    if layer.type == "dense":
        a = arithmetic.dense(index, layer, s)
    elif layer.type == "conv2d":
        a = arithmetic.conv2d(index, layer, s)
    elif layer.type == "loccon2d":
        a = arithmetic.loccon2d(index, layer, s)
    else:
        raise HardwareError(f"layer {index} has unknown type {layer.type!r}; re-export the network")
    return arithmetic.activation(a.reshape((n, *layer.out_shape)), layer.activation)


def _patches(s: np.ndarray, layer: Layer, pad_value: float = 0) -> np.ndarray:
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


def _maxpool(s: np.ndarray, layer: Layer) -> np.ndarray:
    n = len(s)
    s = s.reshape((n, *layer.in_shape))
    kh, kw = layer.kernel
    low = -np.inf if s.dtype.kind == "f" else np.iinfo(s.dtype).min
    patches = _patches(s, layer, pad_value=low)
    channels = layer.in_shape[0]
    pooled = patches.reshape(n, channels, kh * kw, -1).max(axis=2)
    return pooled.reshape((n, *layer.out_shape))


class _Arithmetic:
    """Number-type specific layer arithmetic (float64 or Loihi integers)."""

    def dense(self, index: int, layer: Layer, s: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def conv2d(self, index: int, layer: Layer, s: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def loccon2d(self, index: int, layer: Layer, s: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def activation(self, a: np.ndarray, kind: str) -> np.ndarray:
        raise NotImplementedError


class _FloatArithmetic(_Arithmetic):
    def dense(self, index: int, layer: Layer, s: np.ndarray) -> np.ndarray:
        return s @ np.asarray(layer.weight, np.float64).T

    def conv2d(self, index: int, layer: Layer, s: np.ndarray) -> np.ndarray:
        w = np.asarray(layer.weight, np.float64)
        return np.matmul(w.reshape(w.shape[0], -1), _patches(s, layer))

    def loccon2d(self, index: int, layer: Layer, s: np.ndarray) -> np.ndarray:
        return _loccon_sum(np.asarray(layer.weight, np.float64), _patches(s, layer))

    def activation(self, a: np.ndarray, kind: str) -> np.ndarray:
        return np.maximum(a, 0.0) if kind == "relu" else a


def _loccon_sum(w: np.ndarray, patches: np.ndarray) -> np.ndarray:
    """a[n, o, l] = sum_k w[l, o, k] * patches[n, k, l] as one batched matmul over l."""
    per_position = np.matmul(patches.transpose(2, 0, 1), w.transpose(0, 2, 1))  # (L, N, O)
    return per_position.transpose(1, 2, 0)


class _FixedArithmetic(_Arithmetic):
    def __init__(self, collect_stats: bool = False) -> None:
        self.collect_stats = collect_stats
        self.stats: dict[int, LayerStats] = {}
        self._weights: dict[int, np.ndarray] = {}

    def _effective(self, index: int, layer: Layer, lava_conv: bool = False) -> np.ndarray:
        """The weights Lava multiplies with: as given for Conv, sign-mode rules otherwise."""
        if index not in self._weights:
            w = np.asarray(layer.weight_int)
            if lava_conv:
                self._weights[index] = w.astype(np.int64)
            else:
                self._weights[index] = loihi.sign_mode_effective_weights(w).astype(np.int64)
        return self._weights[index]

    def dense(self, index: int, layer: Layer, s: np.ndarray) -> np.ndarray:
        w = self._effective(index, layer)
        exact = _exact_matmul(s, w.T, _row_bound(w))
        return self._shifted(index, layer, exact)

    def conv2d(self, index: int, layer: Layer, s: np.ndarray) -> np.ndarray:
        lava_conv = loihi.conv_lowering(layer.weight_exp) == "conv"
        w = self._effective(index, layer, lava_conv)
        w2 = w.reshape(w.shape[0], -1)
        exact = _exact_matmul_left(w2, _patches(s, layer), _row_bound(w2))
        if not lava_conv:
            return self._shifted(index, layer, exact)
        a = loihi.conv_output(exact)
        if self.collect_stats:
            self._record(index, exact, a, np.count_nonzero(a != exact))
        return a

    def loccon2d(self, index: int, layer: Layer, s: np.ndarray) -> np.ndarray:
        w = self._effective(index, layer)
        patches = _patches(s, layer)
        bound = float(np.abs(w).sum(axis=2).max(initial=0)) * float(np.abs(s).max(initial=0))
        if bound < EXACT_FLOAT_LIMIT:
            exact = np.rint(_loccon_sum(w.astype(np.float64), patches.astype(np.float64)))
            exact = exact.astype(np.int64)
        else:
            exact = np.einsum("lok,nkl->nol", w, patches.astype(np.int64))
        return self._shifted(index, layer, exact)

    def _shifted(self, index: int, layer: Layer, exact: np.ndarray) -> np.ndarray:
        """int32 wrap of the sum, then the weight exponent (as Dense/Sparse do)."""
        e = int(layer.weight_exp)
        a = loihi.apply_weight_exp(exact.astype(np.int32), e)  # int64 -> int32 wraps
        if self.collect_stats:
            ideal = exact * 2.0**e if e > 0 else exact >> -e
            self._record(index, exact, a, np.count_nonzero(a != ideal))
        return a

    def _record(self, index: int, exact: np.ndarray, a: np.ndarray, wrapped: int) -> None:
        previous = self.stats.get(index, LayerStats(index, 0, 0, 0))
        self.stats[index] = LayerStats(
            index,
            max(previous.max_abs_sum, int(np.abs(exact).max(initial=0))),
            max(previous.max_abs_activation, int(np.abs(a.astype(np.int64)).max(initial=0))),
            previous.wrapped + int(wrapped),
        )

    def activation(self, a: np.ndarray, kind: str) -> np.ndarray:
        return loihi.neuron_output(a, kind).astype(np.int64)


def _row_bound(w: np.ndarray) -> float:
    """Largest sum of |w| over one output unit's inputs."""
    return float(np.abs(w).sum(axis=1).max(initial=0))


def _exact_matmul(s: np.ndarray, w_t: np.ndarray, row_bound: float) -> np.ndarray:
    """Exact int64 s @ w_t: float64 BLAS when |partial sums| < 2^53, else int64."""
    if row_bound * float(np.abs(s).max(initial=0)) < EXACT_FLOAT_LIMIT:
        return np.rint(s.astype(np.float64) @ w_t.astype(np.float64)).astype(np.int64)
    return s.astype(np.int64) @ w_t.astype(np.int64)


def _exact_matmul_left(w: np.ndarray, patches: np.ndarray, row_bound: float) -> np.ndarray:
    """Exact int64 w @ patches (batched over samples), float64 BLAS when provably exact."""
    if row_bound * float(np.abs(patches).max(initial=0)) < EXACT_FLOAT_LIMIT:
        product = np.matmul(w.astype(np.float64), patches.astype(np.float64))
        return np.rint(product).astype(np.int64)
    return np.matmul(w.astype(np.int64), patches.astype(np.int64))
