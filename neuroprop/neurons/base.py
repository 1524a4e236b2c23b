"""What every neuron kind provides: a frozen, validated spec and a step function.

A neuron turns the synaptic input ``a`` of a weight layer into its output and exposes the
post-synaptic *gate* g that BrainProp's update needs (dW ~ delta * phi * g * pre):

- rate neurons (``relu``, ``linear``) are stateless: ``y = f(a)``, g = f'(a);
- spiking neurons (``lif``, and the non-spiking read-out ``li``) carry a state through the
  T steps of a trial; each step returns the output and the surrogate gate psi(t).

Each kind is one module of this package (pure step functions, then a small class that
binds them to the spec's parameters) and one entry of ``neuroprop.neurons.NEURONS``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from neuroprop.errors import NeuropropError


@dataclass(frozen=True)
class NeuronSpec:
    """A neuron kind with its parameters. Subclasses add their parameters as fields.

    ``substrate``: the network substrate it belongs to ("rate" or "spiking");
    ``roles``: where it may stand, "hidden" layers and/or the "output" (Q-value) layer.
    """

    kind: ClassVar[str]
    substrate: ClassVar[str]
    roles: ClassVar[tuple[str, ...]]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}

    @classmethod
    def parse(cls, raw: dict[str, Any], path: str) -> NeuronSpec:
        """The spec from a mapping of its parameters (``kind`` already removed)."""
        if raw:
            key = next(iter(raw))
            raise NeuropropError(f"{path}.{key}: unknown key; the {cls.kind} neuron has no "
                                 "parameters")
        return cls()


def number_in(raw: dict[str, Any], key: str, default: float, low: float, high: float,
              path: str, why: str) -> float:
    """``raw[key]`` (or ``default``) checked to lie in [low, high]; ``why`` explains the range."""
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise NeuropropError(f"{path}.{key}: expected a number in [{low:g}, {high:g}] ({why}), "
                             f"got {value!r}")
    return float(value)


def check_keys(raw: dict[str, Any], allowed: tuple[str, ...], kind: str, path: str) -> None:
    for key in raw:
        if key not in allowed:
            raise NeuropropError(f"{path}.{key}: unknown key; the {kind} neuron takes "
                                 f"{', '.join(allowed)}")
