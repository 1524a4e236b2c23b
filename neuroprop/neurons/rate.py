"""The rate neurons: graded, stateless units (one step per trial).

    relu:    y = max(a, 0),   g = f'(a) = 1[a > 0]
    linear:  y = a,           g = 1               (hidden linear units and the Q-value output)

On Loihi these are Lava's graded neurons GradedReluVec and GradedVec (``hardware.neurons``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from neuroprop.neurons.base import NeuronSpec


@dataclass(frozen=True)
class ReLUSpec(NeuronSpec):
    kind = "relu"
    substrate = "rate"
    roles = ("hidden",)


@dataclass(frozen=True)
class LinearSpec(NeuronSpec):
    kind = "linear"
    substrate = "rate"
    roles = ("hidden", "output")


def relu_(a: Tensor) -> Tensor:
    """y = max(a, 0), in place on ``a``."""
    return a.relu_()


def relu_gate_(phi: Tensor, y: Tensor) -> Tensor:
    """phi * 1[a > 0] in place, read off the output as sign(y) for y = relu(a).

    (Multiplying by sign(y) is one fast float pass; a bool mask is several times slower.)
    """
    return phi.mul_(torch.sign(y))


class ReLU:
    """The relu rate neuron bound to its spec."""

    spec: ReLUSpec

    def __init__(self, spec: ReLUSpec) -> None:
        self.spec = spec

    def rate(self, a: Tensor) -> Tensor:
        return relu_(a)

    def gate_(self, phi: Tensor, y: Tensor) -> Tensor:
        return relu_gate_(phi, y)


class Linear:
    """The linear rate neuron (identity, gate 1)."""

    spec: LinearSpec

    def __init__(self, spec: LinearSpec) -> None:
        self.spec = spec

    def rate(self, a: Tensor) -> Tensor:
        return a

    def gate_(self, phi: Tensor, y: Tensor) -> Tensor:
        return phi
