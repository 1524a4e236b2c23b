"""The layer kinds of an export: one module per kind, one registry.

Each kind (``base.LayerKind``) holds everything about its layer type: shape arithmetic
and validation, weight layout, the float and fixed-point forward pass of the numpy
emulator, what it stores on the chip (for ``hardware.resources``) and its lowering to
Lava processes (lava imported lazily, so this package runs without lava):

=========== ============================================ ===================================
kind        weight                                       Lava connection
=========== ============================================ ===================================
dense       (out, in)                                    Dense
conv2d      (O, C, kh, kw)                               Conv (exponent 0), else Sparse
loccon2d    (L, O, C*kh*kw), L = out_h*out_w             Sparse
flatten     none                                         none (wiring)
maxpool2d   none                                         refused
=========== ============================================ ===================================

Activations are C,H,W-ordered. A new layer type is one new module here and one entry
in ``LAYER_KINDS``. The torch side uses ``window_output`` and ``weight_shape``.
"""

from __future__ import annotations

from hardware.errors import REEXPORT, HardwareError
from hardware.layers.base import LayerKind, ShapeKind, WeightKind
from hardware.layers.conv2d import Conv2d
from hardware.layers.dense import Dense
from hardware.layers.flatten import Flatten
from hardware.layers.loccon2d import LocCon2d
from hardware.layers.maxpool2d import MaxPool2d
from hardware.layers.window import window_output

LAYER_KINDS: dict[str, LayerKind] = {
    kind.name: kind for kind in (Dense(), Conv2d(), LocCon2d(), Flatten(), MaxPool2d())
}
"""Every layer kind an export may hold, by its ``Layer.type`` name."""

WEIGHT_KINDS = tuple(name for name, kind in LAYER_KINDS.items() if kind.has_weights)
"""Names of the kinds with weights (and a neuron)."""

__all__ = [
    "LAYER_KINDS",
    "WEIGHT_KINDS",
    "LayerKind",
    "ShapeKind",
    "WeightKind",
    "layer_kind",
    "layer_kind_problem",
    "weight_shape",
    "window_output",
]


def layer_kind_problem(name: str) -> str | None:
    """What is wrong with a layer type name (not in the registry), or None."""
    if name in LAYER_KINDS:
        return None
    return f"unknown layer type {name!r} (known: {', '.join(LAYER_KINDS)})"


def layer_kind(name: str) -> LayerKind:
    """The registered kind called ``name``; HardwareError for an unknown one."""
    problem = layer_kind_problem(name)
    if problem:
        raise HardwareError(f"{problem}; {REEXPORT}")
    return LAYER_KINDS[name]


def weight_shape(
    kind: str,
    in_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    kernel: tuple[int, int] | None,
) -> tuple[int, ...]:
    """The weight shape of a ``kind`` layer with these shapes and kernel.

    dense: (out, in); conv2d: (O, C, kh, kw); loccon2d: (L, O, C*kh*kw) with
    L = out_h*out_w. ValueError for kinds without weights (and unknown kinds).
    """
    entry = LAYER_KINDS.get(kind)
    if not isinstance(entry, WeightKind):
        raise ValueError(f"{kind} has no weights")
    return entry.weight_shape(tuple(in_shape), tuple(out_shape), kernel)
