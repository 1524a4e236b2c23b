"""Float networks to Loihi fixed point: 8-bit weight mantissas and per-layer exponents.

Weights. Each weight layer gets even mantissas

    W_int = 2 * round(W * 127 / (max|W| * 2^d))        (d = 0 unless forced, below)

in [-254, 254]: even, so Lava's mixed-sign rule (drop the least significant bit)
changes nothing, and within the single-sign ranges too. One mantissa step stands for
the float weight ``w_scale = <W, W_int> / <W_int, W_int>`` (about max|W| 2^d / 254).
An all-zero layer gets zero mantissas.

Exponents. A layer computes a_int = floor(W_int s_int * 2^e) (``hardware.loihi``).
Without biases a ReLU network is positively homogeneous, so any per-layer scale is
free: layer l's integer activations stand for floats

    y_float ~= y_int * c_l,   c_0 = input_scale,   c_l = c_(l-1) * w_scale_l * 2^(-e_l)

(max pooling and flatten keep the scale), and the Q-values come out as
``Q ~= q_int * q_scale`` with ``q_scale = c_L``, stored in ``metadata["q_scale"]``.

The exponents are chosen greedily, layer by layer, on calibration inputs run
through the integer emulator (``hardware.emulator``), each layer seeing the exact
integers that the layers before it produce:

1. e_l is the largest exponent in the allowed range (default: what
   ``hardware.loihi`` accepts, [WEIGHT_EXP_MIN, WEIGHT_EXP_MAX]; Loihi 1's narrower
   ``LOIHI1_WEIGHT_EXP_RANGE`` on request) for which the largest activation
   |a_l| on the calibration set, times the safety margin 2^headroom_bits, stays
   within the 24-bit graded payload (|a| <= 2^23 - 1).
2. If the next weight layer's pre-shift sum |W_int s| (times the margin) would leave
   int32 with that e_l, e_l is lowered until it fits.
3. If even the smallest exponent leaves a limit exceeded, an earlier layer whose
   exponent is still above the smallest is given a lower exponent (its activations
   have bits to spare) and the layers after it are chosen again; only when no
   earlier layer has room are mantissas shrunk by d bits (the ``2^d`` above), one
   bit at a time, each from the layer (this one or an earlier one) that has lost
   fewest so far: fewer weight bits, but no overflow.

The margin (default one bit, a factor of 2) covers test inputs that drive a layer
harder than any calibration input did. Largest exponents keep the most activation
bits: the floor shift rounds every activation down, and activations smaller than
one step (2^-e before the shift) become 0. ``quantisation_report`` measures that
per layer and separates it from the loss due to 8-bit weights (in every network
measured so far the larger one; docs/hardware.md).
"""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np

from hardware.emulator import LayerStats, fixed_point_stats, forward_fixed, forward_float
from hardware.errors import HardwareError
from hardware.format import validate_network
from hardware.graph import HardwareNetwork, Layer, check_samples, layer_name
from hardware.loihi import ACCUMULATOR_MAX, PAYLOAD_MAX, WEIGHT_EXP_MAX, WEIGHT_EXP_MIN

MANTISSA_HALF_RANGE = 127
"""W_int = 2 * round(W * 127 / max|W|): even mantissas in [-254, 254]."""
MAX_WEIGHT_SHIFT_BITS = 7
"""At most this many mantissa bits may be given up to avoid overflow (1 bit remains)."""


def weight_mantissas(weight: np.ndarray, shift_bits: int = 0) -> np.ndarray:
    """Even int16 mantissas ``2 * round(W * 127 / (max|W| * 2^shift_bits))``; zeros for W = 0."""
    w = np.asarray(weight, dtype=np.float64)
    peak = float(np.abs(w).max(initial=0.0))
    if peak == 0.0:
        return np.zeros(w.shape, dtype=np.int16)
    steps = np.rint(w * (MANTISSA_HALF_RANGE / (peak * 2.0**shift_bits)))
    return (2 * steps).astype(np.int16)


def weight_scale(layer: Layer) -> float:
    """Float value of one mantissa step: least-squares fit of W by ``w_scale * W_int``."""
    w_int = np.asarray(layer.weight_int, dtype=np.float64)
    norm = float(np.sum(w_int * w_int))
    if norm == 0.0:
        return 1.0
    return float(np.sum(np.asarray(layer.weight, dtype=np.float64) * w_int) / norm)


def activation_scales(net: HardwareNetwork) -> list[float]:
    """Per layer c_l with y_float ~= y_int * c_l (the module docstring's recursion)."""
    scale = float(net.input_scale)
    scales = []
    for layer in net.layers:
        if layer.has_weights:
            scale *= weight_scale(layer) * 2.0 ** (-int(layer.weight_exp))
        scales.append(scale)
    return scales


def shifted_bound(max_abs_sum: int, weight_exp: int) -> int:
    """Largest |a| that a pre-shift sum of magnitude ``max_abs_sum`` gives (floor shifts)."""
    if weight_exp >= 0:
        return max_abs_sum << weight_exp
    return -((-max_abs_sum) >> -weight_exp)  # |floor(-S / 2^k)| = ceil(S / 2^k)


def _check_calibration(net: HardwareNetwork, calibration: np.ndarray) -> np.ndarray:
    x = check_samples(net, calibration, what="calibration inputs", integers=True, nonempty=True)
    high = 2 ** int(net.input_bits) - 1
    if x.min() < 0 or x.max() > high:
        raise HardwareError(
            f"calibration inputs span [{x.min()}, {x.max()}], outside the {net.input_bits}-bit "
            f"input range [0, {high}]; pass raw pixels"
        )
    return x


def quantise(
    net: HardwareNetwork,
    calibration: np.ndarray,
    *,
    headroom_bits: int = 1,
    exp_range: tuple[int, int] = (WEIGHT_EXP_MIN, WEIGHT_EXP_MAX),
) -> HardwareNetwork:
    """A quantised copy of the float network ``net`` (``weight_int``, ``weight_exp`` set).

    ``calibration``: raw integer inputs (N, *input_shape), e.g. a few hundred training
    samples. Spiking nets are quantised by ``hardware.quantize_spiking`` (one scale per
    layer for weights, threshold and state; same arguments). ``headroom_bits``: safety
    margin 2^headroom_bits on the calibration maxima. ``exp_range``: allowed exponents.
    Adds ``metadata["q_scale"]`` (float Q ~= q_int * q_scale) and
    ``metadata["quantisation"]`` (per-layer choices).
    """
    validate_network(net, source="network to quantise")
    x = _check_calibration(net, calibration)
    exp_min, exp_max = (int(v) for v in exp_range)
    if not WEIGHT_EXP_MIN <= exp_min <= exp_max <= WEIGHT_EXP_MAX:
        raise HardwareError(
            f"exp_range {tuple(exp_range)} is empty or leaves Loihi's exponent range "
            f"[{WEIGHT_EXP_MIN}, {WEIGHT_EXP_MAX}]; pass (low, high) inside it with low <= high"
        )
    if headroom_bits < 0:
        raise HardwareError(f"headroom_bits must be >= 0, got {headroom_bits}")
    if net.substrate == "spiking":
        from hardware.quantize_spiking import quantise_spiking  # it builds on this module

        quant = quantise_spiking(net, x, headroom_bits, (exp_min, exp_max))
        validate_network(quant, source="quantised network")
        return quant

    quant = copy.deepcopy(net)
    weight_layers = [i for i, layer in enumerate(quant.layers) if layer.has_weights]
    limits = (PAYLOAD_MAX >> headroom_bits, ACCUMULATOR_MAX >> headroom_bits)
    caps = dict.fromkeys(weight_layers, exp_max)
    base_shifts = dict.fromkeys(weight_layers, 0)
    while True:
        shifts, stuck = _choose_exponents(
            quant, x, weight_layers, caps, base_shifts, exp_min, limits
        )
        shrunk = [i for i in weight_layers if shifts[i] > base_shifts[i]]
        if stuck is None and not shrunk:
            break
        first = min(shrunk + ([stuck] if stuck is not None else []))
        earlier = [i for i in weight_layers if i < first]
        roomy = [i for i in earlier if quant.layers[i].weight_exp > exp_min]
        if roomy:
            # Activations grow faster than the smallest exponent can shift them back:
            # lower the nearest earlier layer with room rather than lose weight bits.
            j = roomy[-1]
            lost = max(1, shifts[first] - base_shifts[first])
            caps[j] = max(exp_min, quant.layers[j].weight_exp - lost)
            continue
        # Weight bits must go: one at a time, from the layer that has lost fewest.
        candidates = [i for i in [*earlier, first] if base_shifts[i] < MAX_WEIGHT_SHIFT_BITS]
        if not candidates:
            raise HardwareError(
                f"{layer_name(first, quant.layers[first])}: activations overflow Loihi's limits "
                f"even with {MAX_WEIGHT_SHIFT_BITS} weight bits dropped from it and every weight "
                f"layer before it; widen exp_range or rescale the network's weights"
            )
        j = min(candidates, key=lambda i: (base_shifts[i], -i))
        base_shifts[j] += 1
        caps[j] = min(caps[j], quant.layers[j].weight_exp)

    stats = _stats(quant, x)
    scales = activation_scales(quant)
    quant.metadata = {
        **copy.deepcopy(net.metadata),
        "q_scale": scales[-1],
        "quantisation": {
            "method": "W_int = 2*round(W*127/(max|W|*2^d)); largest exponent within limits",
            "calibration_samples": int(len(x)),
            "headroom_bits": int(headroom_bits),
            "exp_range": [exp_min, exp_max],
            "layers": [
                {
                    "name": layer_name(i, quant.layers[i]),
                    "weight_exp": int(quant.layers[i].weight_exp),
                    "weight_shift_bits": int(shifts[i]),
                    "weight_scale": weight_scale(quant.layers[i]),
                    "activation_scale": scales[i],
                    "calibration_max_sum": int(stats[i].max_abs_sum),
                    "calibration_max_activation": int(stats[i].max_abs_activation),
                }
                for i in weight_layers
            ],
        },
    }
    validate_network(quant, source="quantised network")
    return quant


def _choose_exponents(
    quant: HardwareNetwork,
    x: np.ndarray,
    weight_layers: list[int],
    caps: dict[int, int],
    base_shifts: dict[int, int],
    exp_min: int,
    limits: tuple[int, int],
) -> tuple[dict[int, int], int | None]:
    """Set every layer's mantissas and exponent, first to last (steps 1-3 of the module
    docstring; exponents at most ``caps``, at least ``base_shifts`` mantissa bits given
    up). Returns the mantissa bits given up per layer and the first layer that still
    overflows with MAX_WEIGHT_SHIFT_BITS given up (None when every layer fits)."""
    payload_limit, sum_limit = limits
    shifts = dict(base_shifts)
    stuck = None
    for i in weight_layers:
        quant.layers[i].weight_int = weight_mantissas(quant.layers[i].weight, shifts[i])
        quant.layers[i].weight_exp = 0
    for position, i in enumerate(weight_layers):
        layer = quant.layers[i]
        stats = _stats(quant, x, i)
        while stats[i].max_abs_sum > sum_limit or (
            shifted_bound(stats[i].max_abs_sum, exp_min) > payload_limit
        ):
            if shifts[i] >= MAX_WEIGHT_SHIFT_BITS:
                stuck = i if stuck is None else stuck
                break
            shifts[i] += 1
            layer.weight_int = weight_mantissas(layer.weight, shifts[i])
            stats = _stats(quant, x, i)
        layer.weight_exp = _largest_exponent(stats[i].max_abs_sum, payload_limit, exp_min, caps[i])
        if position + 1 < len(weight_layers):
            following = weight_layers[position + 1]
            layer.weight_exp = _fit_next_sum(quant, x, i, following, sum_limit, exp_min)
    return shifts, stuck


def _stats(net: HardwareNetwork, x: np.ndarray, last: int | None = None) -> dict[int, LayerStats]:
    """Integer-model headroom per weight layer, running only layers 0..``last``."""
    if last is not None:
        net = dataclasses.replace(net, layers=net.layers[: last + 1])
    return {row.layer: row for row in fixed_point_stats(net, x)}


def _largest_exponent(max_abs_sum: int, limit: int, exp_min: int, exp_max: int) -> int:
    """Largest e in [exp_min, exp_max] with the shifted maximum within ``limit``.

    An all-zero calibration sum gives no scale to fit, so e = 0 (clipped to the range).
    """
    if max_abs_sum == 0:
        return min(max(0, exp_min), exp_max)
    estimate = math.floor(math.log2(limit / max_abs_sum))
    exponent = min(max(estimate, exp_min), exp_max)
    while exponent < exp_max and shifted_bound(max_abs_sum, exponent + 1) <= limit:
        exponent += 1
    while exponent > exp_min and shifted_bound(max_abs_sum, exponent) > limit:
        exponent -= 1
    return exponent


def _fit_next_sum(
    net: HardwareNetwork, x: np.ndarray, index: int, following: int, limit: int, exp_min: int
) -> int:
    """Lower layer ``index``'s exponent until the next weight layer's sum fits ``limit``.

    Stops at ``exp_min``: what still overflows then is the next layer's to fix (by
    shrinking its own mantissas).
    """
    layer = net.layers[index]
    while layer.weight_exp > exp_min:
        next_sum = _stats(net, x, following)[following].max_abs_sum
        if next_sum <= limit:
            break
        excess_bits = max(1, math.ceil(math.log2(next_sum / limit)))
        layer.weight_exp = max(exp_min, layer.weight_exp - excess_bits)
    return int(layer.weight_exp)


def quantisation_report(
    float_net: HardwareNetwork,
    quant_net: HardwareNetwork,
    x_int: np.ndarray,
    labels: np.ndarray | None = None,
) -> dict:
    """How far the integer model of ``quant_net`` strays from ``float_net`` on ``x_int``.

    Returns a dict: ``samples``; ``argmax_agreement`` (fraction of samples whose
    integer argmax equals the float argmax); ``weight_rounding_agreement`` (the same
    for a float model that uses the rounded weights ``w_scale * W_int``: the loss due
    to 8-bit weights alone, the rest is due to integer activations); ``q_scale``;
    ``q_relative_error`` (||q_int q_scale - q_float|| / ||q_float||); with ``labels`` also
    ``float_accuracy`` and ``fixed_accuracy``; and ``layers``, one entry per weight
    layer with ``relative_error`` (||y_int c_l - y_float|| / ||y_float|| over the
    batch), ``zeroed_fraction`` (units positive in float but 0 in the integer model:
    floor-shift losses), ``max_abs_activation`` and ``headroom_bits`` (log2 of the
    24-bit payload limit over it), ``median_active`` (median nonzero |y_int|: the
    activation resolution in steps) and ``wrapped`` (overflowed sums; 0 when the
    quantiser's limits hold). Spiking nets: ``hardware.quantize_spiking.spiking_report``.
    """
    if quant_net.substrate == "spiking":
        from hardware.quantize_spiking import spiking_report  # it builds on this module

        return spiking_report(float_net, quant_net, x_int, labels)
    x = np.asarray(x_int)
    q_float, float_acts = forward_float(
        float_net, x.astype(np.float64) * float_net.input_scale, return_activations=True
    )
    q_fixed, fixed_acts = forward_fixed(quant_net, x, return_activations=True)
    stats = _stats(quant_net, x)
    scales = activation_scales(quant_net)
    rounded = copy.deepcopy(float_net)
    for layer, quantised in zip(rounded.layers, quant_net.layers, strict=True):
        if layer.has_weights:
            layer.weight = (quantised.weight_int * weight_scale(quantised)).astype(np.float32)
    q_rounded = forward_float(rounded, x.astype(np.float64) * float_net.input_scale)
    float_choice = np.argmax(q_float, axis=1)
    fixed_choice = np.argmax(q_fixed, axis=1)
    q_error = float(np.linalg.norm(q_fixed * scales[-1] - q_float))
    report: dict = {
        "samples": int(len(x)),
        "argmax_agreement": float(np.mean(float_choice == fixed_choice)),
        "weight_rounding_agreement": float(np.mean(float_choice == np.argmax(q_rounded, axis=1))),
        "q_scale": scales[-1],
        "q_relative_error": q_error / max(float(np.linalg.norm(q_float)), np.finfo(float).tiny),
    }
    if labels is not None:
        y = np.asarray(labels).reshape(-1)
        report["float_accuracy"] = float(np.mean(float_choice == y))
        report["fixed_accuracy"] = float(np.mean(fixed_choice == y))
    layers = []
    for i, layer in enumerate(quant_net.layers):
        if not layer.has_weights:
            continue
        y_float = float_acts[i].astype(np.float64)
        y_int = fixed_acts[i]
        norm = float(np.linalg.norm(y_float))
        error = float(np.linalg.norm(y_int * scales[i] - y_float))
        positive = y_float > 0
        active = np.abs(y_int[y_int != 0])
        peak = stats[i].max_abs_activation
        layers.append(
            {
                "name": layer_name(i, layer),
                "weight_exp": int(layer.weight_exp),
                "relative_error": error / norm if norm > 0 else float(error > 0),
                "zeroed_fraction": float(np.mean(y_int[positive] == 0)) if positive.any() else 0.0,
                "max_abs_activation": int(peak),
                "headroom_bits": math.log2(PAYLOAD_MAX / peak) if peak else float("inf"),
                "median_active": float(np.median(active)) if active.size else 0.0,
                "wrapped": int(stats[i].wrapped),
            }
        )
    report["layers"] = layers
    return report
