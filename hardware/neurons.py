"""The neuron kinds of an export: what follows each weight layer, one entry per kind.

A weight layer's ``Layer.neuron`` is a dict, ``{"kind": NAME, **parameters}``; shape
layers (flatten, max pooling) carry ``None``. Each kind holds its float forward, its
fixed-point forward (the integers Lava's ``fixed_pt`` model sends, from
``hardware.loihi``) and its Lava process (lava imported lazily):

======== =================== ================== =====================================
kind     float               fixed (int32)      Lava process (``fixed_pt``; float model)
======== =================== ================== =====================================
relu     y = max(a, 0)       y = a * (a > 0)    GradedReluVec(vth=0); PyGradedReluVecModelFloat
linear   y = a               y = a              GradedVec(vth=0); PyGradedVecModelFloat
======== =================== ================== =====================================

Both are graded and stateless: a new sample every time step. A new neuron kind is one
new class here and one entry in ``NEURON_KINDS``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from hardware import loihi
from hardware.errors import REEXPORT, HardwareError

if TYPE_CHECKING:
    from lava.magma.core.process.process import AbstractProcess


class NeuronKind:
    """One neuron kind. Subclasses set ``name`` (and ``parameters``) and implement the
    methods below."""

    name: ClassVar[str]
    parameters: ClassVar[tuple[str, ...]] = ()
    """Keys the neuron dict may hold besides "kind"."""

    def check(self, neuron: dict) -> str | None:
        """The first problem with the parameters of ``neuron``, or None."""
        unknown = sorted(set(neuron) - {"kind", *self.parameters})
        if unknown:
            allowed = ", ".join(self.parameters) or "none"
            return (
                f"{self.name} neurons take no parameter {', '.join(unknown)} (allowed: {allowed})"
            )
        return None

    def forward_float(self, a: np.ndarray, neuron: dict) -> np.ndarray:
        """The float64 outputs for float64 inputs ``a``."""
        raise NotImplementedError

    def forward_fixed(self, a: np.ndarray, neuron: dict) -> np.ndarray:
        """The int32 outputs Lava's fixed-point model sends for int32 inputs ``a``."""
        raise NotImplementedError

    def lava_neurons(self, size: int, neuron: dict) -> AbstractProcess:
        """A Lava population of ``size`` neurons with ports ``a_in`` and ``s_out``."""
        raise NotImplementedError

    def lava_float_models(self) -> dict[type, type]:
        """ProcessModels to select for ``floating_pt`` runs, by Lava Process class."""
        return {}


class GradedNeuron(NeuronKind):
    """A stateless graded neuron with ``vth = loihi.NEURON_THRESHOLD`` (0)."""

    def lava_classes(self) -> tuple[type, type]:
        """The Lava Process and its floating_pt model (hardware.lava.processes)."""
        raise NotImplementedError

    def lava_neurons(self, size: int, neuron: dict) -> AbstractProcess:
        process, _ = self.lava_classes()
        return process(shape=(size,), vth=loihi.NEURON_THRESHOLD)

    def lava_float_models(self) -> dict[type, type]:
        process, model = self.lava_classes()
        return {process: model}


class Relu(GradedNeuron):
    name = "relu"

    def forward_float(self, a: np.ndarray, neuron: dict) -> np.ndarray:
        return np.maximum(a, 0.0)

    def forward_fixed(self, a: np.ndarray, neuron: dict) -> np.ndarray:
        return loihi.graded_relu_vec(a)

    def lava_classes(self) -> tuple[type, type]:
        from lava.proc.graded.process import GradedReluVec

        from hardware.lava.processes.float_neurons import PyGradedReluVecModelFloat

        return GradedReluVec, PyGradedReluVecModelFloat


class Linear(GradedNeuron):
    name = "linear"

    def forward_float(self, a: np.ndarray, neuron: dict) -> np.ndarray:
        return a

    def forward_fixed(self, a: np.ndarray, neuron: dict) -> np.ndarray:
        return loihi.graded_vec(a)

    def lava_classes(self) -> tuple[type, type]:
        from lava.proc.graded.process import GradedVec

        from hardware.lava.processes.float_neurons import PyGradedVecModelFloat

        return GradedVec, PyGradedVecModelFloat


NEURON_KINDS: dict[str, NeuronKind] = {kind.name: kind for kind in (Relu(), Linear())}
"""Every neuron kind an export may hold, by its "kind" name."""


def neuron_problem(neuron: object) -> str | None:
    """What is wrong with a weight layer's neuron dict, or None."""
    if not isinstance(neuron, dict) or not isinstance(neuron.get("kind"), str):
        return f'neuron must be a dict with a "kind" (e.g. {{"kind": "relu"}}), got {neuron!r}'
    kind = NEURON_KINDS.get(neuron["kind"])
    if kind is None:
        return f"unknown neuron kind {neuron['kind']!r} (known: {', '.join(NEURON_KINDS)})"
    return kind.check(neuron)


def neuron_kind(neuron: dict | None) -> NeuronKind:
    """The registered kind of a neuron dict; HardwareError for a bad one."""
    problem = neuron_problem(neuron)
    if problem:
        raise HardwareError(f"{problem}; {REEXPORT}")
    return NEURON_KINDS[neuron["kind"]]
