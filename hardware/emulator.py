"""Numpy models of an exported network: a float64 reference and Loihi's integer arithmetic.

Layer by layer, each layer kind (``hardware.layers``) computes its part and each
weight layer's neuron kind (``hardware.neurons``) its output:

``forward_float``: the float network, a = W s (dense product, PyTorch correlation with
zero padding and stride, locally connected sums), then relu(a) or a; max pooling and
flatten as they are.

``forward_fixed``: for integer inputs, exactly the integers that Lava's ``fixed_pt``
models produce (``hardware.loihi`` states the arithmetic)::

    dense, loccon2d, conv2d with e != 0 (Dense / Sparse):
        a = wrap32(W_eff s) << e  (wrapping)   or   wrap32(W_eff s) >> -e  (floor)
    conv2d with e == 0 (Lava's Conv):  a = wrap24(int32(W_int (*) s))
    y = a * (a > 0) (relu) or a (linear), int32

Spiking nets (``substrate="spiking"``) run T steps per sample in ``hardware.spiking``;
``forward_float`` and ``forward_fixed`` dispatch to it and return the output's v[T].

Integer products are summed as float64 BLAS matrix products whenever every partial
sum is provably below 2^53 (|W| row sums times max |s|), which makes them exact;
otherwise they fall back to int64. Samples go through in chunks that bound memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hardware.errors import HardwareError
from hardware.graph import HardwareNetwork, Layer, check_samples, layer_name
from hardware.layers import ShapeKind, layer_kind
from hardware.neurons import neuron_kind
from hardware.spiking import run as run_spiking

CHUNK_ELEMENTS = 1 << 23
"""Largest intermediate array (elements) a chunk of samples may need."""


@dataclass
class LayerStats:
    """Fixed-point headroom of one weight layer over a batch of inputs.

    ``max_abs_sum``: largest |exact W s| before the shift (must stay below 2^31).
    ``max_abs_activation``: largest |a| after the shift (should stay below 2^23).
    ``wrapped``: how many activations differ from the exact sum shifted without any
    wraparound, floor(W s 2^e) (the int32 sum, the int32 left shift or Conv's 24 bits
    overflowed).
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
    layer's output, (N, *layer.out_shape), in layer order. Spiking nets: the output's
    v[T] (the torch side's q is v[T] / T) and each layer's trial output (spike counts,
    ``hardware.spiking``).
    """
    x = check_samples(net, x_float).astype(np.float64, copy=False)
    for index, layer in enumerate(net.layers):
        if layer.has_weights and layer.weight is None:
            raise HardwareError(
                f"{layer_name(index, layer)} has no float weights; export the float network"
            )
    if net.substrate == "spiking":
        return run_spiking(net, x, False, return_activations)
    return _forward(net, x, _Run(fixed=False), return_activations)


def forward_fixed(
    net: HardwareNetwork, x_int: np.ndarray, return_activations: bool = False
) -> np.ndarray | tuple[np.ndarray, list[np.ndarray]]:
    """Integer forward pass, bit-exact with Lava's fixed_pt models: int64 Q-values.

    ``x_int`` holds integer inputs (N, *input_shape) (uint8 pixels). With
    ``return_activations`` also returns each layer's int64 output in layer order.
    Spiking nets: the output's v_int[T] (Lava's int32 voltage) and each layer's trial
    output (spike counts, ``hardware.spiking``).
    """
    _check_quantised(net)
    x = check_samples(net, x_int, integers=True).astype(np.int64, copy=False)
    if net.substrate == "spiking":
        return run_spiking(net, x, True, return_activations)
    return _forward(net, x, _Run(fixed=True), return_activations)


def fixed_point_stats(net: HardwareNetwork, x_int: np.ndarray) -> list[LayerStats]:
    """Headroom of every weight layer of ``forward_fixed`` over ``x_int`` (see LayerStats);
    rate nets only (spiking nets: ``hardware.spiking.SpikingStats`` via ``run``)."""
    _check_quantised(net)
    if net.substrate != "rate":
        raise HardwareError(
            f"fixed_point_stats takes rate nets, not {net.substrate} ones; pass a stats dict "
            "to hardware.spiking.run"
        )
    x = check_samples(net, x_int, integers=True).astype(np.int64, copy=False)
    run = _Run(fixed=True, stats={})
    _forward(net, x, run, False)
    return [run.stats[i] for i in sorted(run.stats)]


def _check_quantised(net: HardwareNetwork) -> None:
    if not net.is_quantised:
        raise HardwareError(
            "the network has no integer weights (or neuron registers); quantise it "
            "(hardware.quantize) first"
        )


@dataclass
class _Run:
    """One forward pass: float or fixed point, the fixed-point weights of each weight
    layer (computed once for all chunks), and the headroom stats when collected."""

    fixed: bool
    stats: dict[int, LayerStats] | None = None
    weights: dict[int, np.ndarray] = field(default_factory=dict)


def _forward(
    net: HardwareNetwork, x: np.ndarray, run: _Run, return_activations: bool
) -> np.ndarray | tuple[np.ndarray, list[np.ndarray]]:
    chunk = _chunk_size(net)
    outputs: list[list[np.ndarray]] = [[] for _ in net.layers]
    for start in range(0, max(len(x), 1), chunk):
        s = x[start : start + chunk]
        for index, layer in enumerate(net.layers):
            s = _layer_forward(index, layer, s, run)
            if return_activations or index == len(net.layers) - 1:
                outputs[index].append(s)
    joined = [np.concatenate(parts) if parts else None for parts in outputs]
    q = joined[-1].reshape(len(x), -1)
    if return_activations:
        return q, joined
    return q


def _chunk_size(net: HardwareNetwork) -> int:
    """Samples per chunk so that no intermediate (im2col included) exceeds CHUNK_ELEMENTS."""
    per_sample = max(
        [int(np.prod(net.input_shape))]
        + [layer_kind(layer.type).work_elements(layer) for layer in net.layers]
    )
    return max(1, CHUNK_ELEMENTS // per_sample)


def _layer_forward(index: int, layer: Layer, s: np.ndarray, run: _Run) -> np.ndarray:
    """One layer's output (N, *out_shape): float64, or int64 holding Lava's integers."""
    n = len(s)
    kind = layer_kind(layer.type)
    s = s.reshape((n, *layer.in_shape))
    if isinstance(kind, ShapeKind):
        return kind.forward(layer, s).reshape((n, *layer.out_shape))
    neuron = neuron_kind(layer.neuron)
    if not run.fixed:
        a = kind.forward_float(layer, s).reshape((n, *layer.out_shape))
        return neuron.forward_float(a, layer.neuron)
    if index not in run.weights:
        run.weights[index] = kind.fixed_weights(layer)
    exact, a = kind.forward_fixed(layer, s, run.weights[index])
    if run.stats is not None:
        _record(run.stats, index, int(layer.weight_exp), exact, a)
    a = a.reshape((n, *layer.out_shape))
    return neuron.forward_fixed(a, layer.neuron).astype(np.int64)


def _record(
    stats: dict[int, LayerStats], index: int, e: int, exact: np.ndarray, a: np.ndarray
) -> None:
    """Add a chunk's headroom to layer ``index``: wrapped counts a != floor(exact 2^e)."""
    ideal = exact * 2.0**e if e > 0 else exact >> -e
    previous = stats.get(index, LayerStats(index, 0, 0, 0))
    stats[index] = LayerStats(
        index,
        max(previous.max_abs_sum, int(np.abs(exact).max(initial=0))),
        max(previous.max_abs_activation, int(np.abs(a.astype(np.int64)).max(initial=0))),
        previous.wrapped + int(np.count_nonzero(a != ideal)),
    )
