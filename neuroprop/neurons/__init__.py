"""Neuron kinds: one entry each, a spec (parameters, validation) and its step functions.

``parse_neuron(raw, path)`` validates a layer's ``neuron:`` (a kind name or a mapping with
``kind`` and parameters); ``build_neuron(spec)`` binds the step functions to it.
"""

from __future__ import annotations

from typing import Any

from neuroprop.errors import NeuropropError
from neuroprop.neurons.base import NeuronSpec
from neuroprop.neurons.lif import LI, LIF, LIFSpec, LISpec, State, Trace, surrogate
from neuroprop.neurons.rate import Linear, LinearSpec, ReLU, ReLUSpec

__all__ = ["LI", "LIF", "NEURONS", "Linear", "NeuronSpec", "ReLU", "State", "Trace",
           "build_neuron", "default_neuron", "parse_neuron", "surrogate"]

NEURONS: dict[str, tuple[type[NeuronSpec], type]] = {
    "relu": (ReLUSpec, ReLU),
    "linear": (LinearSpec, Linear),
    "lif": (LIFSpec, LIF),
    "li": (LISpec, LI),
}
"""kind -> (spec class, neuron class)."""

DEFAULTS = {("rate", "hidden"): "relu", ("rate", "output"): "linear",
            ("spiking", "hidden"): "lif", ("spiking", "output"): "li"}


def default_neuron(substrate: str, role: str) -> NeuronSpec:
    """The default neuron of a substrate's "hidden" or "output" layers."""
    return NEURONS[DEFAULTS[(substrate, role)]][0]()


def parse_neuron(raw: Any, path: str, substrate: str, role: str) -> NeuronSpec:
    """Validate ``raw`` (a kind or {kind, params}) for a "hidden" or "output" layer."""
    section = {"kind": raw} if isinstance(raw, str) else raw
    if not isinstance(section, dict) or "kind" not in section:
        raise NeuropropError(f"{path}: expected a neuron kind or a mapping with 'kind', "
                             f"got {raw!r}")
    kind = section["kind"]
    if not isinstance(kind, str) or kind not in NEURONS:
        raise NeuropropError(f"{path}.kind: unknown neuron {kind!r}; use one of "
                             f"{', '.join(NEURONS)}")
    spec_class = NEURONS[kind][0]
    if spec_class.substrate != substrate:
        raise NeuropropError(f"{path}: the {kind} neuron belongs to {spec_class.substrate} "
                             f"nets, this one is {substrate}; use "
                             f"{DEFAULTS[(substrate, role)]} or set network.substrate")
    if role not in spec_class.roles:
        where = "the output layer" if role == "output" else "hidden layers"
        raise NeuropropError(f"{path}: {kind} cannot be the neuron of {where}; use "
                             f"{DEFAULTS[(substrate, role)]}")
    return spec_class.parse({k: v for k, v in section.items() if k != "kind"}, path)


def build_neuron(spec: NeuronSpec) -> Any:
    """The neuron object (step functions bound to ``spec``)."""
    return NEURONS[spec.kind][1](spec)
