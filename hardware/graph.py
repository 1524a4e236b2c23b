"""The in-memory form of an exported network: the contract between the torch side,
the export format, the quantiser, the integer emulator and the Lava backend.

A network is a feed-forward chain of ``Layer``s. Each layer's ``type`` names a layer
kind of ``hardware.layers`` (dense, conv2d, loccon2d, flatten, maxpool2d), which
states its weight layout, shapes and arithmetic; activations are C,H,W-ordered. A
weight layer computes a = W * s (no biases anywhere) and then its ``neuron``, a dict
``{"kind": NAME, **parameters}`` of ``hardware.neurons`` (``{"kind": "relu"}`` or
``{"kind": "linear"}``); flatten and maxpool2d layers carry ``neuron=None``.
Batch-norm gains are folded into the weights and dropout is removed before a network
reaches this form. The last layer is a linear dense layer whose outputs are the
Q-values.

Spiking nets (``substrate="spiking"``) run every sample for ``timesteps`` T steps:
hidden weight layers carry ``{"kind": "lif", "du", "dv", "vth"}``, the output layer
``{"kind": "li", "du", "dv"}`` (``hardware.neurons``); the quantiser adds the integer
registers to those dicts. Rate nets have T = 1.

Fixed point: ``weight_int`` holds the Loihi weight mantissas (same layout as
``weight``) and ``weight_exp`` the layer's exponent: a_int = (W_int * s_int) << e
(arithmetic shift right, i.e. floor, for e < 0). Inputs are unsigned integers of
``input_bits`` bits; their float value is ``x_int * input_scale``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hardware.errors import HardwareError
from hardware.layers import LAYER_KINDS, WEIGHT_KINDS
from hardware.neurons import NEURON_KINDS


@dataclass
class Layer:
    """One layer of an exported network (layouts: the kind's module in ``hardware.layers``)."""

    type: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    neuron: dict | None = None
    weight: np.ndarray | None = None
    weight_int: np.ndarray | None = None
    weight_exp: int = 0
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] | None = None

    @property
    def has_weights(self) -> bool:
        return self.type in WEIGHT_KINDS


@dataclass
class HardwareNetwork:
    """A feed-forward network ready for (or already through) quantisation.

    ``substrate``: "rate" (graded neurons, one sample per time step) or "spiking"
    (LIF neurons, ``timesteps`` steps per sample; 1 for rate nets); ``learning`` holds
    the on-chip learning rule's parameters (later). Neuron parameters live on each
    layer (``Layer.neuron``).
    """

    input_shape: tuple[int, ...]
    input_scale: float
    layers: list[Layer]
    input_bits: int = 8
    substrate: str = "rate"
    timesteps: int = 1
    learning: dict | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return int(np.prod(self.layers[-1].out_shape))

    @property
    def is_quantised(self) -> bool:
        """Every weight layer has mantissas and its neuron its integer parameters."""
        return all(
            layer.weight_int is not None and _neuron_quantised(layer.neuron)
            for layer in self.layers
            if layer.has_weights
        )


def _neuron_quantised(neuron: dict | None) -> bool:
    kind = NEURON_KINDS.get(neuron.get("kind")) if isinstance(neuron, dict) else None
    return kind is None or kind.is_quantised(neuron)


def layer_name(index: int, layer: Layer) -> str:
    """The name a layer has in a manifest and in messages, e.g. ``layer2_dense``."""
    return f"layer{index}_{layer.type}"


def lava_refusal(net: HardwareNetwork) -> str | None:
    """Why the Lava backend cannot run ``net`` (its first layer of a kind with a
    ``lava_refusal``, e.g. max pooling), as ``layerN_kind: reason``; None if it can."""
    for index, layer in enumerate(net.layers):
        kind = LAYER_KINDS.get(layer.type)
        if kind is not None and kind.lava_refusal:
            return f"{layer_name(index, layer)}: {kind.lava_refusal}"
    return None


def check_samples(
    net: HardwareNetwork,
    x: np.ndarray,
    *,
    what: str = "inputs",
    integers: bool = False,
    nonempty: bool = False,
) -> np.ndarray:
    """``x`` as an array of samples (N, *input_shape); HardwareError if it is not one.

    ``integers``: refuse non-integer dtypes (raw pixels are expected); ``nonempty``:
    refuse N = 0.
    """
    x = np.asarray(x)
    expected = tuple(net.input_shape)
    if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected or (nonempty and not len(x)):
        raise HardwareError(
            f"{what} have shape {x.shape}, expected (N, {', '.join(map(str, expected))})"
            f"{' with N >= 1' if nonempty else ''}; pass one sample per row in the network's "
            "input layout"
        )
    if integers and not np.issubdtype(x.dtype, np.integer):
        raise HardwareError(
            f"{what} must be integers (raw integer pixels), got {x.dtype}; pass the uint8 "
            "pixels, not x * input_scale"
        )
    return x
