"""The numpy emulator against slow, explicit-loop references, and Loihi's integer rules.

No lava here: these run in either environment.
"""

from __future__ import annotations

import numpy as np
import pytest

from hardware import loihi
from hardware.emulator import fixed_point_stats, forward_fixed, forward_float
from hardware.errors import HardwareError
from hardware.graph import HardwareNetwork, Layer
from hardware.layers import window_output
from hardware.layers.base import exact_matmul

RELU = {"kind": "relu"}
LINEAR = {"kind": "linear"}


def _window_layer(kind, in_shape, out_channels, kernel, stride, padding, neuron="relu"):
    c, h, w = in_shape
    out_h = window_output(h, kernel[0], stride[0], padding[0])
    out_w = window_output(w, kernel[1], stride[1], padding[1])
    pooling = kind == "maxpool2d"
    return Layer(
        type=kind,
        in_shape=in_shape,
        out_shape=(c if pooling else out_channels, out_h, out_w),
        neuron=None if pooling else {"kind": neuron},
        kernel=kernel,
        stride=stride,
        padding=padding,
    )


def _layout_network(rng: np.random.Generator, with_maxpool: bool = True) -> HardwareNetwork:
    """conv (asymmetric kernel, stride, padding, non-square) -> loccon -> [maxpool] -> dense.

    Float weights plus even mantissas with exponents that keep activations small.
    """
    conv = _window_layer("conv2d", (2, 9, 7), 3, (3, 2), (2, 1), (1, 2))
    loccon = _window_layer("loccon2d", conv.out_shape, 4, (2, 3), (1, 2), (0, 0))
    layers = [conv, loccon]
    if with_maxpool:
        layers.append(_window_layer("maxpool2d", loccon.out_shape, 0, (2, 2), (1, 1), (1, 0)))
    flat = int(np.prod(layers[-1].out_shape))
    layers.append(Layer("flatten", layers[-1].out_shape, (flat,)))
    layers.append(Layer("dense", (flat,), (5,), LINEAR))
    for layer, exp in zip([conv, loccon, layers[-1]], (-2, -7, -6), strict=True):
        c = layer.in_shape[0]
        if layer.type == "conv2d":
            shape = (layer.out_shape[0], c, *layer.kernel)
        elif layer.type == "loccon2d":
            positions = layer.out_shape[1] * layer.out_shape[2]
            shape = (positions, layer.out_shape[0], c * layer.kernel[0] * layer.kernel[1])
        else:
            shape = (layer.out_shape[0], layer.in_shape[0])
        layer.weight = rng.standard_normal(shape).astype(np.float32)
        layer.weight_int = 2 * rng.integers(-127, 128, size=shape)
        layer.weight_exp = exp
    return HardwareNetwork(input_shape=(2, 9, 7), input_scale=1 / 16, layers=layers)


# ---- slow references: explicit loops over one sample ----------------------------------


def _taps(layer: Layer, y: int, x: int):
    """(c, i, j, input_y, input_x) of every kernel tap of output position (y, x)."""
    c_in, h, w = layer.in_shape
    kh, kw = layer.kernel
    (sh, sw), (ph, pw) = layer.stride, layer.padding or (0, 0)
    for c in range(c_in):
        for i in range(kh):
            for j in range(kw):
                yy, xx = y * sh + i - ph, x * sw + j - pw
                yield c, i, j, yy, xx, (0 <= yy < h and 0 <= xx < w)


def _num(value: object) -> int | float:
    """A Python number from a numpy scalar or a Python number (object arrays)."""
    return value.item() if hasattr(value, "item") else value


def _slow_sums(layer: Layer, s: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Exact pre-activations of one sample as Python numbers (object array)."""
    out = np.zeros(layer.out_shape, dtype=object)
    if layer.type == "dense":
        for o in range(layer.out_shape[0]):
            out[o] = sum(_num(weight[o, i]) * _num(s[i]) for i in range(layer.in_shape[0]))
        return out
    _, out_h, out_w = layer.out_shape
    kh, kw = layer.kernel
    for o in range(layer.out_shape[0]):
        for y in range(out_h):
            for x in range(out_w):
                total = 0
                for c, i, j, yy, xx, inside in _taps(layer, y, x):
                    if not inside:
                        continue
                    if layer.type == "conv2d":
                        w = weight[o, c, i, j]
                    else:
                        w = weight[y * out_w + x, o, (c * kh + i) * kw + j]
                    total += _num(w) * _num(s[c, yy, xx])
                out[o, y, x] = total
    return out


def _slow_maxpool(layer: Layer, s: np.ndarray) -> np.ndarray:
    out = np.zeros(layer.out_shape, dtype=object)
    for c in range(layer.out_shape[0]):
        for y in range(layer.out_shape[1]):
            for x in range(layer.out_shape[2]):
                values = [
                    _num(s[cc, yy, xx])
                    for cc, _, _, yy, xx, inside in _taps(layer, y, x)
                    if inside and cc == c
                ]
                out[c, y, x] = max(values)
    return out


def _slow_float(net: HardwareNetwork, sample: np.ndarray) -> np.ndarray:
    s = sample.astype(np.float64)
    for layer in net.layers:
        if layer.type == "flatten":
            s = s.reshape(-1)
        elif layer.type == "maxpool2d":
            s = _slow_maxpool(layer, s).astype(np.float64)
        else:
            a = _slow_sums(layer, s, layer.weight.astype(np.float64)).astype(np.float64)
            s = np.maximum(a, 0) if layer.neuron == RELU else a
    return s.reshape(-1)


def _wrap(value: int, bits: int) -> int:
    half = 1 << (bits - 1)
    return (value + half) % (1 << bits) - half


def _slow_effective(w: int, mixed: bool) -> int:
    if not mixed:
        return max(-255, min(255, w))
    w = max(-256, min(255, w))
    return w - (w % 2)  # floor to even


def _slow_fixed(net: HardwareNetwork, sample: np.ndarray) -> np.ndarray:
    """Loihi's integer rules, written out independently with Python integers."""
    s = sample.astype(object)
    for layer in net.layers:
        if layer.type == "flatten":
            s = s.reshape(-1)
            continue
        if layer.type == "maxpool2d":
            s = _slow_maxpool(layer, s)
            continue
        e = int(layer.weight_exp)
        lava_conv = layer.type == "conv2d" and e == 0
        w = layer.weight_int.astype(object)
        if not lava_conv:
            mixed = w.min() < 0 < w.max()
            w = np.vectorize(lambda v, m=mixed: _slow_effective(v, m), otypes=[object])(w)
        sums = _slow_sums(layer, s, w)
        a = np.zeros(layer.out_shape, dtype=object)
        for index, total in np.ndenumerate(sums):
            if lava_conv:
                a[index] = _wrap(total, 24)
            elif e >= 0:
                a[index] = _wrap(_wrap(total, 32) * 2**e, 32)
            else:
                a[index] = _wrap(total, 32) // 2**-e  # Python's // floors
        s = np.vectorize(lambda v: max(v, 0), otypes=[object])(a) if layer.neuron == RELU else a
    return s.reshape(-1).astype(np.int64)


# ---- tests ----------------------------------------------------------------------------


def test_float_model_matches_explicit_loops_for_conv_loccon_maxpool():
    rng = np.random.default_rng(1)
    net = _layout_network(rng)
    x = rng.standard_normal((3, *net.input_shape))
    q, activations = forward_float(net, x, return_activations=True)
    assert q.shape == (3, 5)
    assert [a.shape[1:] for a in activations] == [tuple(layer.out_shape) for layer in net.layers]
    for n in range(len(x)):
        np.testing.assert_allclose(q[n], _slow_float(net, x[n]), rtol=1e-12, atol=1e-12)


def test_fixed_model_matches_explicit_integer_loops():
    rng = np.random.default_rng(2)
    net = _layout_network(rng)
    x = rng.integers(0, 256, size=(3, *net.input_shape), dtype=np.uint8)
    q = forward_fixed(net, x)
    assert q.dtype == np.int64
    for n in range(len(x)):
        np.testing.assert_array_equal(q[n], _slow_fixed(net, x[n]))


def test_saturating_network_matches_explicit_integer_loops():
    rng = np.random.default_rng(3)
    net = _layout_network(rng, with_maxpool=False)
    conv, loccon = net.layers[0], net.layers[1]
    conv.weight_int = np.full_like(conv.weight_int, 254)
    conv.weight_exp = 12  # 2^12 * 254 * 255 * 12 taps > 2^31: the int32 shift wraps
    loccon.weight_exp = 0
    x = np.full((2, *net.input_shape), 255, dtype=np.uint8)
    assert fixed_point_stats(net, x)[0].wrapped > 0
    q = forward_fixed(net, x)
    for n in range(len(x)):
        np.testing.assert_array_equal(q[n], _slow_fixed(net, x[n]))


def test_conv_with_zero_exponent_uses_24_bit_wrap_and_others_int32():
    layer = _window_layer("conv2d", (1, 3, 3), 1, (3, 3), (1, 1), (0, 0), neuron="linear")
    layer.weight_int = np.full((1, 1, 3, 3), 254)
    net = HardwareNetwork((1, 3, 3), 1.0, [layer, Layer("flatten", (1, 1, 1), (1,))])
    x = np.full((1, 1, 3, 3), 255, dtype=np.uint8)
    exact = 9 * 254 * 255  # 582930 fits 24 bits: no wrap yet
    assert forward_fixed(net, x)[0, 0] == exact
    layer.weight_exp = 0
    x16 = np.full((1, 1, 3, 3), 4000)  # 9 * 254 * 4000 = 9144000 > 2^23 - 1
    assert forward_fixed(net, x16)[0, 0] == _wrap(9 * 254 * 4000, 24)
    layer.weight_exp = 1  # Sparse path: int32 arithmetic, no 24-bit wrap
    assert forward_fixed(net, x16)[0, 0] == 2 * 9 * 254 * 4000


def test_negative_exponent_floors_negative_sums():
    layer = Layer("dense", (2,), (3,), LINEAR, weight_int=np.array([[-2, 0], [2, -4], [6, 0]]))
    net = HardwareNetwork((2,), 1.0, [layer])
    x = np.array([[3, 1]])
    # sums: -6, 2, 18; >> 2 floors: -6/4 = -1.5 -> -2 (truncation would give -1)
    layer.weight_exp = -2
    np.testing.assert_array_equal(forward_fixed(net, x), [[-2, 0, 4]])
    layer.weight_exp = -3
    np.testing.assert_array_equal(forward_fixed(net, x), [[-1, 0, 2]])
    layer.neuron = RELU
    np.testing.assert_array_equal(forward_fixed(net, x), [[0, 0, 2]])


def test_dense_sum_wraps_to_int32_and_positive_exponent_wraps_too():
    w = np.array([[254] * 4])
    net = HardwareNetwork((4,), 1.0, [Layer("dense", (4,), (1,), LINEAR, weight_int=w)])
    x = np.full((1, 4), 255)
    exact = 4 * 254 * 255
    for e in (0, 10, 14):
        net.layers[0].weight_exp = e
        assert forward_fixed(net, x)[0, 0] == _wrap(exact * 2**e, 32)
    assert forward_fixed(net, x)[0, 0] != exact * 2**14  # 2^14 * 259080 > 2^31: wrapped
    assert fixed_point_stats(net, x)[0].max_abs_activation == abs(_wrap(exact * 2**14, 32))


def test_sign_mode_rules_clip_and_truncate_like_lava():
    mixed = np.array([255, -255, 3, -3, 300, -300, 0])
    np.testing.assert_array_equal(
        loihi.sign_mode_effective_weights(mixed), [254, -256, 2, -4, 254, -256, 0]
    )
    np.testing.assert_array_equal(
        loihi.sign_mode_effective_weights(np.array([255, 3, 300])), [255, 3, 255]
    )
    np.testing.assert_array_equal(
        loihi.sign_mode_effective_weights(np.array([-255, -3, -300])), [-255, -3, -255]
    )
    # the emulator uses them: an odd mixed-sign mantissa acts as the even one below it
    w = np.array([[3, -1]])
    net = HardwareNetwork((2,), 1.0, [Layer("dense", (2,), (1,), LINEAR, weight_int=w)])
    assert forward_fixed(net, np.array([[10, 10]]))[0, 0] == 2 * 10 - 2 * 10


def test_check_functions_refuse_what_lava_would_alter():
    loihi.check_weight_mantissas(np.array([254, -256, 0, 2]), "layer0_dense")
    with pytest.raises(HardwareError, match="layer0_dense: 1 weight mantissas would be altered"):
        loihi.check_weight_mantissas(np.array([255, -4]), "layer0_dense")
    loihi.check_weight_exponent(-12, "layer1_dense")
    with pytest.raises(HardwareError, match="outside"):
        loihi.check_weight_exponent(loihi.WEIGHT_EXP_MIN - 1, "layer1_dense")
    with pytest.raises(HardwareError, match="not an integer"):
        loihi.check_weight_exponent(1.5, "layer1_dense")


def test_blas_path_equals_int64_path():
    rng = np.random.default_rng(4)
    s = rng.integers(-(2**22), 2**22, size=(7, 300))
    w = 2 * rng.integers(-128, 128, size=(300, 11))
    bound = float(np.abs(w).sum(axis=0).max())
    fast = exact_matmul(s, w, bound)
    slow = exact_matmul(s, w, 2.0**60)  # a bound beyond 2^53 forces the int64 path
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(slow, s @ w)


def test_chunked_batches_equal_one_by_one(monkeypatch):
    rng = np.random.default_rng(5)
    net = _layout_network(rng)
    x = rng.integers(0, 256, size=(9, *net.input_shape), dtype=np.uint8)
    whole = forward_fixed(net, x)
    monkeypatch.setattr("hardware.emulator.CHUNK_ELEMENTS", 1)  # one sample per chunk
    np.testing.assert_array_equal(forward_fixed(net, x), whole)


def test_all_zero_input_gives_zero_q_values():
    rng = np.random.default_rng(6)
    net = _layout_network(rng)
    x = np.zeros((2, *net.input_shape), dtype=np.uint8)
    np.testing.assert_array_equal(forward_fixed(net, x), np.zeros((2, 5), dtype=np.int64))


def test_bad_inputs_are_refused_in_one_line():
    rng = np.random.default_rng(7)
    net = _layout_network(rng)
    with pytest.raises(HardwareError, match="expected \\(N, 2, 9, 7\\)"):
        forward_fixed(net, np.zeros((2, 9, 7), dtype=np.uint8))
    with pytest.raises(HardwareError, match="must be integers"):
        forward_fixed(net, np.zeros((1, 2, 9, 7)))
    net.layers[0].weight_int = None
    with pytest.raises(HardwareError, match="quantise it"):
        forward_fixed(net, np.zeros((1, 2, 9, 7), dtype=np.uint8))
