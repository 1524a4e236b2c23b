"""The in-memory form of an exported network: the contract between the torch side,
the export format, the quantiser, the integer emulator and the Lava backend.

Conventions (all layouts follow PyTorch's, activations are C,H,W-ordered):

- ``dense``:    ``weight`` (out, in).
- ``conv2d``:   ``weight`` (O, C, kh, kw), with ``stride`` and ``padding`` (zero padding).
- ``loccon2d``: ``weight`` (L, O, C*kh*kw) with L = out_h*out_w output positions in
  row-major order and the K = C*kh*kw axis in ``torch.nn.functional.unfold`` order;
  no padding (valid), ``stride`` as given.
- ``flatten``:  C,H,W -> C*H*W.
- ``maxpool2d``: ``kernel`` and ``stride``.

Every weight layer computes a = W * s (no biases anywhere), then its ``activation``
("relu" or "linear"; room for "lif" later). Batch-norm gains are folded into the
weights and dropout is removed before a network reaches this form. The last layer
is a linear dense layer whose outputs are the Q-values.

Fixed point: ``weight_int`` holds the Loihi weight mantissas (same layout as
``weight``) and ``weight_exp`` the layer's exponent: a_int = (W_int * s_int) << e
(arithmetic shift right, i.e. floor, for e < 0). Inputs are unsigned integers of
``input_bits`` bits; their float value is ``x_int * input_scale``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

WEIGHT_LAYERS = ("dense", "conv2d", "loccon2d")
SHAPE_LAYERS = ("flatten", "maxpool2d")
LAYER_TYPES = WEIGHT_LAYERS + SHAPE_LAYERS
ACTIVATIONS = ("relu", "linear")


@dataclass
class Layer:
    """One layer of an exported network (see the module docstring for layouts)."""

    type: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    activation: str = "linear"
    weight: np.ndarray | None = None
    weight_int: np.ndarray | None = None
    weight_exp: int = 0
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] | None = None

    @property
    def has_weights(self) -> bool:
        return self.type in WEIGHT_LAYERS


@dataclass
class HardwareNetwork:
    """A feed-forward network ready for (or already through) quantisation.

    ``substrate`` is "rate" today (graded ReLU neurons); ``neuron`` and ``learning``
    hold substrate-specific parameters (LIF constants, on-chip learning rule) for
    the spiking and embedded-learning extensions.
    """

    input_shape: tuple[int, ...]
    input_scale: float
    layers: list[Layer]
    input_bits: int = 8
    substrate: str = "rate"
    neuron: dict = field(default_factory=dict)
    learning: dict | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return int(np.prod(self.layers[-1].out_shape))

    @property
    def is_quantised(self) -> bool:
        return all(layer.weight_int is not None for layer in self.layers if layer.has_weights)
