"""What every layer kind provides, and the exact integer products the kinds share.

A layer kind is one ``LayerKind`` instance in the registry (``hardware.layers``). It
answers, for a ``hardware.graph.Layer`` of its type:

- ``check``: what is wrong with the layer's shapes and window, if anything;
- ``footprint``: what it stores on the chip (``hardware.resources`` turns that into
  memory and cores);
- ``work_elements``: the largest intermediate array one sample needs in the emulator;
- ``lower``: the Lava connection that carries it (lava is imported inside, so this
  package imports without lava);
- the forward pass: ``ShapeKind.forward`` (wiring, pooling: the same for float and
  integers) or, for a ``WeightKind``, ``forward_float`` and ``forward_fixed`` (the
  integers Lava's ``fixed_pt`` connection sends, ``hardware.loihi``).

A weight kind computes a = W s; the layer's neuron kind (``hardware.neurons``) then
turns a into the layer's output. Shape kinds carry no neuron.

Exact integer products: an integer product summed in float64 is exact when every
partial sum stays below 2^53, i.e. when ``max_i sum_j |W_ij| * max_j |s_j| < 2^53``.
The kinds then use BLAS; otherwise they fall back to int64 (no BLAS, slower).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from hardware import loihi
from hardware.errors import HardwareError

if TYPE_CHECKING:
    from lava.magma.core.process.ports.ports import OutPort
    from lava.magma.core.process.process import AbstractProcess

    from hardware.graph import Layer

EXACT_FLOAT_LIMIT = 2.0**53
"""Integers up to this magnitude are exact in float64, and so are their sums."""


class Storage(enum.Enum):
    """How a layer's synapses sit in synaptic memory (costed in ``hardware.resources``)."""

    NONE = "none"
    """Nothing stored (wiring only)."""
    MATRIX = "matrix"
    """A full weight matrix: a weight's position names its target, no index."""
    SPARSE = "sparse"
    """A list of synapses, each with an index naming its target neuron in the core."""
    SHARED = "shared"
    """A shared kernel, stored once per group of up to 8,192 (one core's) neurons."""


@dataclass(frozen=True)
class Footprint:
    """What one layer needs on the chip: neurons, stored synapses, the (input, output)
    connections they make, and how the synapses are stored."""

    neurons: int
    synapses: int
    connections: int
    storage: Storage


class LayerKind:
    """One layer type. Subclasses set ``name`` and implement the methods below."""

    name: ClassVar[str]
    has_weights: ClassVar[bool] = False
    """Weight kinds carry ``weight``/``weight_int``/``weight_exp`` and a neuron."""
    lava_refusal: ClassVar[str | None] = None
    """Why the Lava backend cannot run this kind (None: it can)."""
    substrate_refusals: ClassVar[dict[str, str]] = {}
    """Why the kind cannot sit in a net of a substrate, by substrate (absent: it can)."""

    def check(self, layer: Layer) -> str | None:
        """The first problem with the layer's shapes, kernel, stride or padding, or None."""
        raise NotImplementedError

    def footprint(self, layer: Layer) -> Footprint:
        """Neurons, synapses, connections and storage of the layer on the chip."""
        raise NotImplementedError

    def work_elements(self, layer: Layer) -> int:
        """Elements of the largest intermediate array one sample needs (default: the output)."""
        return int(np.prod(layer.out_shape))

    def lower(
        self, layer: Layer, fixed: bool, port: OutPort, message_bits: int = loihi.MESSAGE_BITS
    ) -> tuple[AbstractProcess | None, OutPort]:
        """The Lava connection fed by ``port`` (None for pure wiring) and its flat, C,H,W-
        ordered output port. A connection delays by one time step. ``fixed``: integer
        weights and exponent (``fixed_pt``), else float weights (``floating_pt``).
        ``message_bits``: the connection's ``num_message_bits``, 24 for graded input, 0
        for binary spikes (the sums are the same for 0/1 inputs)."""
        raise HardwareError(f"{self.name}: {self.lava_refusal or 'no Lava lowering'}")


class ShapeKind(LayerKind):
    """A kind without weights or neurons (wiring, pooling)."""

    def forward(self, layer: Layer, s: np.ndarray) -> np.ndarray:
        """The output for ``s`` (N, *in_shape), in any dtype; C,H,W-ordered per sample."""
        raise NotImplementedError


class WeightKind(LayerKind):
    """A kind that computes a = W s (no bias) and is followed by the layer's neurons."""

    has_weights = True

    def weight_shape(
        self,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...],
        kernel: tuple[int, int] | None,
    ) -> tuple[int, ...]:
        """The weight shape that the layer's in/out shapes and kernel imply."""
        raise NotImplementedError

    def weight_axes(self) -> tuple[str, ...]:
        """Names of the weight's axes, for messages."""
        raise NotImplementedError

    def forward_float(self, layer: Layer, s: np.ndarray) -> np.ndarray:
        """a = W s in float64 for ``s`` (N, *in_shape); C,H,W-ordered per sample."""
        raise NotImplementedError

    def fixed_weights(self, layer: Layer) -> np.ndarray:
        """The int64 weights Lava's connection multiplies with (computed once per run)."""
        raise NotImplementedError

    def forward_fixed(
        self, layer: Layer, s: np.ndarray, weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """For int64 ``s`` (N, *in_shape) and ``fixed_weights``: the exact int64 sums
        W s, and the int32 activations Lava's connection sends for them."""
        raise NotImplementedError


def lava_weights(layer: Layer, fixed: bool) -> tuple[np.ndarray, int]:
    """The weights and exponent a Lava connection gets: int32 mantissas and ``weight_exp``
    in fixed point, float64 weights and exponent 0 in floating point."""
    if fixed:
        return np.asarray(layer.weight_int).astype(np.int32), int(layer.weight_exp)
    return np.asarray(layer.weight).astype(np.float64), 0


def row_bound(w: np.ndarray) -> float:
    """Largest sum of |w| over one output unit's inputs (rows of a 2-d ``w``)."""
    return float(np.abs(w).sum(axis=1).max(initial=0))


def exact_matmul(s: np.ndarray, w_t: np.ndarray, bound: float) -> np.ndarray:
    """Exact int64 ``s @ w_t``: float64 BLAS when ``bound * max|s| < 2^53``, else int64."""
    if bound * float(np.abs(s).max(initial=0)) < EXACT_FLOAT_LIMIT:
        return np.rint(s.astype(np.float64) @ w_t.astype(np.float64)).astype(np.int64)
    return s.astype(np.int64) @ w_t.astype(np.int64)


def exact_matmul_left(w: np.ndarray, patches: np.ndarray, bound: float) -> np.ndarray:
    """Exact int64 ``w @ patches`` (batched over samples), float64 BLAS when provably exact."""
    if bound * float(np.abs(patches).max(initial=0)) < EXACT_FLOAT_LIMIT:
        product = np.matmul(w.astype(np.float64), patches.astype(np.float64))
        return np.rint(product).astype(np.int64)
    return np.matmul(w.astype(np.int64), patches.astype(np.int64))
