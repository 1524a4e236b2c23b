"""The numpy model of spiking nets: T steps per sample, batch-vectorised.

Every sample starts from zero state and runs ``net.timesteps`` steps. Per step t::

    s = x                                   the input, the same graded payload every step
    for each layer:
        shape layer (flatten):  s = its forward of s
        weight layer:           a = the layer kind's connection of s  (W s, shift, wraps)
                                s, state = the neuron kind's step of (a, state)

Between LIF layers s is a binary spike vector (0/1); the first weight layer sees the
graded input, so its sums are computed once per sample. The output layer's ``li``
voltage after step T is the Q-value: int64 in fixed point (Lava's int32 v, in units of
a << 6), float64 in float (v[T]; the torch side's q is v[T] / T).

``forward_fixed`` computes, step for step, the integers of Lava's ``fixed_pt`` models
(the layer kinds' connections and ``hardware.loihi.lif_step_fixed``); it is the
reference the Lava backend matches bit for bit. ``forward_float`` uses the float weights,
``x * input_scale`` and ``lif_step_float``, like Lava's ``floating_pt`` models.

A layer's *trial output* (``return_activations``): its spike count over the T steps for
a ``lif`` layer, v[T] for the ``li`` output, and for a shape layer its forward of the
trial output before it (for the input: x).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hardware import loihi
from hardware.errors import HardwareError
from hardware.graph import HardwareNetwork, Layer, layer_name
from hardware.layers import ShapeKind, WeightKind, layer_kind
from hardware.neurons import SpikingNeuron, State, neuron_kind

CHUNK_ELEMENTS = 1 << 22
"""Largest intermediate array (elements) a chunk of samples may need."""


@dataclass
class SpikingStats:
    """Fixed-point ranges of one weight layer over a batch of inputs and all T steps.

    ``max_abs_sum``: largest |exact W s| before the shift (int32 accumulator);
    ``max_abs_input``: largest |a| the connection sends (a << 6 must stay in int32);
    ``max_abs_current``: largest |u| before Lava's 24-bit wrap (no wrap: <= 2^23 - 1);
    ``max_voltage`` / ``min_voltage``: extremes of v after each step (v is clipped to
    +-(2^23 - 1)); ``spikes``: spikes over all samples, neurons and steps.
    """

    layer: int
    max_abs_sum: int = 0
    max_abs_input: int = 0
    max_abs_current: int = 0
    max_voltage: int = 0
    min_voltage: int = 0
    spikes: int = 0


def run(
    net: HardwareNetwork,
    x: np.ndarray,
    fixed: bool,
    return_activations: bool = False,
    stats: dict[int, SpikingStats] | None = None,
) -> np.ndarray | tuple[np.ndarray, list[np.ndarray]]:
    """Q-values (N, num_classes) of the spiking ``net`` for inputs ``x`` (N, *input_shape):
    int64 integer inputs in fixed point, float64 ``x * input_scale`` in float.

    With ``return_activations`` also each layer's trial output (module docstring); with
    ``stats`` (fixed point) the ranges of every weight layer are accumulated into it.
    """
    chunk = _chunk_size(net)
    outputs: list[list[np.ndarray]] = [[] for _ in net.layers]
    weights = {
        index: layer_kind(layer.type).fixed_weights(layer)
        for index, layer in enumerate(net.layers)
        if fixed and layer.has_weights
    }
    for start in range(0, max(len(x), 1), chunk):
        trial = _run_chunk(net, x[start : start + chunk], fixed, weights, stats)
        for index, value in enumerate(trial):
            if return_activations or index == len(net.layers) - 1:
                outputs[index].append(value)
    joined = [np.concatenate(parts) for parts in outputs if parts]
    q = joined[-1].reshape(len(x), -1)
    if return_activations:
        return q, joined
    return q


def _chunk_size(net: HardwareNetwork) -> int:
    """Samples per chunk: the largest per-sample array (im2col included) times a few
    states stays below CHUNK_ELEMENTS."""
    per_sample = max(
        [int(np.prod(net.input_shape))]
        + [4 * layer_kind(layer.type).work_elements(layer) for layer in net.layers]
    )
    return max(1, CHUNK_ELEMENTS // per_sample)


def _run_chunk(
    net: HardwareNetwork,
    x: np.ndarray,
    fixed: bool,
    weights: dict[int, np.ndarray],
    stats: dict[int, SpikingStats] | None,
) -> list[np.ndarray]:
    """The T steps of one chunk; each layer's trial output."""
    n = len(x)
    first = next(i for i, layer in enumerate(net.layers) if layer.has_weights)
    s = x
    for layer in net.layers[:first]:
        s = _shape_forward(layer, s)
    constant_input = _connection(first, net.layers[first], s, fixed, weights, stats)
    states: dict[int, State] = {}
    totals: dict[int, np.ndarray] = {}
    for index, layer in enumerate(net.layers[first:], start=first):
        if layer.has_weights:
            neuron = _spiking_neuron(index, layer)
            states[index] = neuron.initial_state((n, *layer.out_shape), fixed)
            totals[index] = np.zeros((n, *layer.out_shape), np.int64 if fixed else np.float64)
    for _ in range(int(net.timesteps)):
        for index, layer in enumerate(net.layers[first:], start=first):
            if not layer.has_weights:
                s = _shape_forward(layer, s)
                continue
            a = (
                constant_input
                if index == first
                else _connection(index, layer, s, fixed, weights, stats)
            )
            s = _neuron_step(index, layer, a, states, fixed, stats)
            if "output" in _spiking_neuron(index, layer).roles:
                totals[index] = s
            else:
                totals[index] += s
    trial: list[np.ndarray] = []
    previous = x
    for index, layer in enumerate(net.layers):
        previous = totals[index] if layer.has_weights else _shape_forward(layer, previous)
        trial.append(previous)
    return trial


def _spiking_neuron(index: int, layer: Layer) -> SpikingNeuron:
    kind = neuron_kind(layer.neuron)
    if not isinstance(kind, SpikingNeuron):
        raise HardwareError(
            f"{layer_name(index, layer)}: a {kind.name} neuron in a spiking net; export lif "
            "hidden layers and an li output"
        )
    return kind


def _shape_forward(layer: Layer, s: np.ndarray) -> np.ndarray:
    kind = layer_kind(layer.type)
    assert isinstance(kind, ShapeKind)
    return kind.forward(layer, s.reshape((len(s), *layer.in_shape))).reshape(
        (len(s), *layer.out_shape)
    )


def _connection(
    index: int,
    layer: Layer,
    s: np.ndarray,
    fixed: bool,
    weights: dict[int, np.ndarray],
    stats: dict[int, SpikingStats] | None,
) -> np.ndarray:
    """a = the layer kind's W s: float64, or the int32 that Lava's connection sends."""
    kind = layer_kind(layer.type)
    assert isinstance(kind, WeightKind)
    n = len(s)
    s = s.reshape((n, *layer.in_shape))
    if not fixed:
        return kind.forward_float(layer, s).reshape((n, *layer.out_shape))
    exact, a = kind.forward_fixed(layer, s, weights[index])
    if stats is not None:
        entry = stats.setdefault(index, SpikingStats(index))
        entry.max_abs_sum = max(entry.max_abs_sum, int(np.abs(exact).max(initial=0)))
        entry.max_abs_input = max(entry.max_abs_input, int(np.abs(a).max(initial=0)))
    return a.reshape((n, *layer.out_shape))


def _neuron_step(
    index: int,
    layer: Layer,
    a: np.ndarray,
    states: dict[int, State],
    fixed: bool,
    stats: dict[int, SpikingStats] | None,
) -> np.ndarray:
    """One step of the layer's neurons; updates ``states`` and returns the output."""
    neuron = _spiking_neuron(index, layer)
    if not fixed:
        step = neuron.step_float(a, states[index], layer.neuron)
        states[index] = step.state
        return step.out
    if stats is not None:
        current = loihi.lif_current_fixed(states[index].u, a, int(layer.neuron["du_int"]))
    step = neuron.step_fixed(a, states[index], layer.neuron)
    states[index] = step.state
    if stats is not None:
        entry = stats.setdefault(index, SpikingStats(index))
        v = step.state.v
        entry.max_abs_current = max(entry.max_abs_current, int(np.abs(current).max(initial=0)))
        entry.max_voltage = max(entry.max_voltage, int(v.max(initial=0)))
        entry.min_voltage = min(entry.min_voltage, int(v.min(initial=0)))
        entry.spikes += int(np.count_nonzero(step.fired))
    return step.out
