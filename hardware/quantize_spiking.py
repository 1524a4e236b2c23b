"""Spiking nets to Loihi fixed point: weights, threshold and state with one scale per layer.

A weight layer l of a spiking net computes a_int = floor(W_int s * 2^e_l) and feeds it to
its LIF (``hardware.loihi.lif_step_fixed``), which integrates a_int << 6 and compares v
with vth_int << 6. So a_int, u / 64, v / 64 and vth_int share one unit, the float value
of one step of the layer's input after the shift::

    step_l = c_in * w_scale_l * 2^(-e_l),   c_in = input_scale (first layer: the graded
                                             pixels), 1 (later layers: binary spikes)

with ``w_scale_l`` the float value of one mantissa step (``hardware.quantize``). Since
the float LIF is linear below threshold and its threshold scales with the same unit,
the integer LIF is the float one divided by step_l (as sinabs discretises a layer: one
scale for weights, threshold and state). Per layer:

- mantissas: the rate path's even rule, W_int = 2 round(W 127 / max|W|);
- decays: du_int = round(du 4096) - 1 (current decay (du_int + 1)/4096; du = 1 gives
  4095), dv_int = round(dv 4096);
- threshold: vth_int = round(vth / step_l), within 0..131071 (17 bits);
- exponent: the largest e_l in ``exp_range`` (the finest step) for which vth_int fits
  and, on the calibration inputs run through the integer model for all T steps (each
  layer seeing the spikes the quantised layers before it produce), the state stays in
  range with a margin of 2^headroom_bits: |a << 6| and |u| within the 24-bit state
  (no wrap), v >= -(2^23 - 1) (no clip); for the ``li`` read-out, which runs as a LIF at
  the largest threshold, |v| below 131071 << 6 (it must never spike; its v grows with
  T) and no spike at all.

Q-values: the integer model returns v_int[T] of the read-out, in units of step_L / 64,
so the torch side's q = v[T] / T is

    q ~= v_int[T] * q_scale / (64 T),     q_scale = step_L      (metadata["q_scale"])

and the float model's v[T] ~= v_int[T] * q_scale / 64.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np

from hardware import spiking
from hardware.emulator import forward_fixed, forward_float
from hardware.errors import HardwareError
from hardware.graph import HardwareNetwork, layer_name
from hardware.loihi import (
    ACCUMULATOR_MAX,
    LIF_MSB_SHIFT,
    LIF_VOLTAGE_MAX,
    LIF_VTH_MAX,
)
from hardware.neurons import SpikingNeuron, neuron_kind
from hardware.quantize import shifted_bound, weight_mantissas, weight_scale

Q_CONVENTION = "q = v_int[T] * q_scale / (64 T)"


def quantise_spiking(
    net: HardwareNetwork,
    x: np.ndarray,
    headroom_bits: int,
    exp_range: tuple[int, int],
) -> HardwareNetwork:
    """A quantised copy of the spiking float ``net`` (see the module docstring).

    ``x``: checked raw calibration inputs. Adds ``metadata["q_scale"]`` and
    ``metadata["quantisation"]``.
    """
    quant = copy.deepcopy(net)
    exp_min, exp_max = exp_range
    limits = _Limits(headroom_bits)
    weight_layers = [i for i, layer in enumerate(quant.layers) if layer.has_weights]
    records = []
    for position, i in enumerate(weight_layers):
        layer = quant.layers[i]
        layer.weight_int = weight_mantissas(layer.weight)
        w_scale = weight_scale(layer)
        c_in = float(quant.input_scale) if position == 0 else 1.0
        neuron = layer.neuron
        kind = neuron_kind(neuron)
        assert isinstance(kind, SpikingNeuron)
        vth = kind.threshold(neuron)
        spikes = math.isfinite(vth)
        exponent = exp_max
        if spikes:  # vth / step <= LIF_VTH_MAX
            exponent = min(exponent, math.floor(math.log2(LIF_VTH_MAX * c_in * w_scale / vth)))
        while True:
            if exponent < exp_min:
                raise HardwareError(
                    f"{layer_name(i, layer)}: no weight exponent in [{exp_min}, {exp_max}] "
                    "keeps the threshold within 17 bits and the LIF state within 24 bits; "
                    "widen exp_range or lower the threshold"
                )
            layer.weight_exp = exponent
            step = c_in * w_scale * 2.0 ** (-exponent)
            layer.neuron = kind.quantised(neuron, step)
            stats = _layer_stats(quant, x, i)
            if stats.max_abs_sum > limits.sum:
                raise HardwareError(
                    f"{layer_name(i, layer)}: the sums W_int s reach {stats.max_abs_sum}, "
                    "beyond Loihi's int32 accumulator; rescale the layer's weights"
                )
            excess = limits.excess(stats, exponent, spikes)
            if excess <= 1.0 and (spikes or stats.spikes == 0):
                break
            exponent -= max(1, math.ceil(math.log2(max(excess, 1.0))))
        records.append(_record(quant, i, step, w_scale, stats, len(x)))
    quant.metadata = {
        **copy.deepcopy(net.metadata),
        "q_scale": records[-1]["input_step"],
        "quantisation": {
            "method": (
                "W_int = 2*round(W*127/max|W|); one step per layer for a, u/64, v/64 and "
                "vth_int; largest exponent within limits"
            ),
            "q_convention": Q_CONVENTION,
            "timesteps": int(net.timesteps),
            "calibration_samples": int(len(x)),
            "headroom_bits": int(headroom_bits),
            "exp_range": [int(exp_min), int(exp_max)],
            "layers": records,
        },
    }
    return quant


@dataclasses.dataclass
class _Limits:
    """The calibration maxima allowed with a margin of 2^headroom_bits."""

    headroom_bits: int

    @property
    def sum(self) -> int:
        return ACCUMULATOR_MAX >> self.headroom_bits

    @property
    def state(self) -> int:
        return LIF_VOLTAGE_MAX >> self.headroom_bits

    @property
    def readout(self) -> int:
        return (LIF_VTH_MAX << LIF_MSB_SHIFT) >> self.headroom_bits

    def excess(self, stats: spiking.SpikingStats, exponent: int, spikes: bool) -> float:
        """The largest ratio of a calibration maximum to its limit (<= 1: it fits); the
        input is bounded by the exact sums shifted without wrapping (a left shift that
        wraps in int32 could make the sent a look small)."""
        ratios = [
            (shifted_bound(stats.max_abs_sum, exponent) << LIF_MSB_SHIFT) / self.state,
            stats.max_abs_current / self.state,
            -stats.min_voltage / self.state,
        ]
        if not spikes:
            ratios.append(max(stats.max_voltage, -stats.min_voltage) / self.readout)
        return max(ratios)


def _layer_stats(net: HardwareNetwork, x: np.ndarray, index: int) -> spiking.SpikingStats:
    """Ranges of layer ``index`` when layers 0..index run on ``x`` for T steps."""
    prefix = dataclasses.replace(net, layers=net.layers[: index + 1])
    stats: dict[int, spiking.SpikingStats] = {}
    spiking.run(prefix, x.astype(np.int64), True, stats=stats)
    return stats[index]


def _record(
    net: HardwareNetwork,
    index: int,
    step: float,
    w_scale: float,
    stats: spiking.SpikingStats,
    samples: int,
) -> dict:
    layer = net.layers[index]
    neuron_steps = samples * int(np.prod(layer.out_shape)) * int(net.timesteps)
    return {
        "name": layer_name(index, layer),
        "weight_exp": int(layer.weight_exp),
        "weight_scale": w_scale,
        "input_step": step,
        "neuron": dict(layer.neuron),
        "calibration_max_input": stats.max_abs_input,
        "calibration_max_current": stats.max_abs_current,
        "calibration_voltage_range": [stats.min_voltage, stats.max_voltage],
        "calibration_spikes_per_neuron_step": stats.spikes / max(1, neuron_steps),
    }


def spiking_report(
    float_net: HardwareNetwork,
    quant_net: HardwareNetwork,
    x_int: np.ndarray,
    labels: np.ndarray | None,
) -> dict:
    """``quantisation_report`` for spiking nets: argmax agreement of v[T], the same for a
    float model with the rounded weights ``w_scale * W_int`` (the part due to 8-bit
    weights), ``q_relative_error`` of v_int[T] q_scale / 64 against the float v[T], and
    per LIF layer the relative error of its spike counts and the float and integer
    spikes per neuron and step."""
    x = np.asarray(x_int)
    x_float = x.astype(np.float64) * float_net.input_scale
    q_float, float_counts = forward_float(float_net, x_float, return_activations=True)
    q_fixed, fixed_counts = forward_fixed(quant_net, x, return_activations=True)
    rounded = copy.deepcopy(float_net)
    for layer, quantised in zip(rounded.layers, quant_net.layers, strict=True):
        if layer.has_weights:
            layer.weight = (quantised.weight_int * weight_scale(quantised)).astype(np.float32)
    q_rounded = forward_float(rounded, x_float)
    q_scale = float(quant_net.metadata["q_scale"])
    float_choice = np.argmax(q_float, axis=1)
    error = float(np.linalg.norm(q_fixed * (q_scale / 2**LIF_MSB_SHIFT) - q_float))
    report: dict = {
        "samples": int(len(x)),
        "argmax_agreement": float(np.mean(float_choice == np.argmax(q_fixed, axis=1))),
        "weight_rounding_agreement": float(np.mean(float_choice == np.argmax(q_rounded, axis=1))),
        "q_scale": q_scale,
        "q_convention": Q_CONVENTION,
        "q_relative_error": error / max(float(np.linalg.norm(q_float)), np.finfo(float).tiny),
    }
    if labels is not None:
        y = np.asarray(labels).reshape(-1)
        report["float_accuracy"] = float(np.mean(float_choice == y))
        report["fixed_accuracy"] = float(np.mean(np.argmax(q_fixed, axis=1) == y))
    layers = []
    steps = int(quant_net.timesteps)
    for i, layer in enumerate(quant_net.layers):
        if not layer.has_weights or "output" in neuron_kind(layer.neuron).roles:
            continue
        counts_float, counts_fixed = float_counts[i], fixed_counts[i].astype(np.float64)
        norm = float(np.linalg.norm(counts_float))
        diff = float(np.linalg.norm(counts_fixed - counts_float))
        layers.append(
            {
                "name": layer_name(i, layer),
                "weight_exp": int(layer.weight_exp),
                "vth_int": int(layer.neuron["vth_int"]),
                "count_relative_error": diff / norm if norm > 0 else float(diff > 0),
                "float_rate": float(counts_float.mean() / steps),
                "fixed_rate": float(counts_fixed.mean() / steps),
            }
        )
    report["layers"] = layers
    return report
