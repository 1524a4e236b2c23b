"""The neuron kinds of an export: what follows each weight layer, one entry per kind.

A weight layer's ``Layer.neuron`` is a dict, ``{"kind": NAME, **parameters}``; shape
layers (flatten, max pooling) carry ``None``. Each kind belongs to one substrate and
may take the roles "hidden" (a hidden weight layer) and/or "output" (the Q-values),
and holds its float model, its fixed-point model (the integers Lava's ``fixed_pt``
model computes, from ``hardware.loihi``) and its Lava process (lava imported lazily).

Rate kinds (``substrate="rate"``), graded and stateless, a new sample every step:

======== ======= ============= =============== =============================================
kind     roles   float         fixed (int32)   Lava process (``fixed_pt``); ``floating_pt`` model
======== ======= ============= =============== =============================================
relu     hidden  max(a, 0)     a * (a > 0)     GradedReluVec(vth=0); PyGradedReluVecModelFloat
linear   both    a             a               GradedVec(vth=0); PyGradedVecModelFloat
======== ======= ============= =============== =============================================

Spiking kinds (``substrate="spiking"``), stateful, T steps per sample, state reset to
zero at the start of each sample; per step (``loihi.lif_step_float`` / ``lif_step_fixed``)::

    u = u (1 - du) + a;   v = v (1 - dv) + u;   s = v > vth;   v = 0 where s

======== ========= ====================================== ====================================
kind     roles     parameters (float; integer, quantised)  Lava process; output
======== ========= ====================================== ====================================
lif      hidden    du, dv, vth;  du_int, dv_int, vth_int   LIFReset; binary spikes s
li       output    du, dv;       du_int, dv_int            VoltageReadout (LIFReset, vth 131071)
                                                          with a v_out port; the voltage v
======== ========= ====================================== ====================================

Float parameters: du in [1/4096, 1], dv in [0, 4095/4096], vth > 0 (the torch side's
ranges). Integer registers (``hardware.loihi``): current decay (du_int + 1)/4096, voltage
decay dv_int/4096, threshold vth_int << 6 in units of the input a shifted by 6; so
du_int = round(du 4096) - 1, dv_int = round(dv 4096). The read-out ``li`` never spikes
in float; in fixed point it is a LIF at the largest threshold (``LIF_VTH_MAX``), which
the quantiser keeps |v| below. A new neuron kind is one new class here and one entry in
``NEURON_KINDS``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, NamedTuple

import numpy as np

from hardware import loihi
from hardware.errors import REEXPORT, HardwareError

if TYPE_CHECKING:
    from lava.magma.core.process.ports.ports import OutPort
    from lava.magma.core.process.process import AbstractProcess

SUBSTRATES = ("rate", "spiking")
"""``HardwareNetwork.substrate`` values; each neuron kind belongs to one."""
ROLES = ("hidden", "output")


@dataclass(frozen=True)
class Placement:
    """Where a Lava population sits in a streaming run: ``fixed`` (integer registers) or
    float, ``steps`` per sample, and ``depth``, the connections from the input to it (its
    own included); it handles step j of sample i at Lava step i * steps + j + 1 + depth."""

    fixed: bool
    steps: int
    depth: int


class State(NamedTuple):
    """A spiking population's current u and voltage v, (N, *shape) each."""

    u: np.ndarray
    v: np.ndarray


class Step(NamedTuple):
    """One step of a spiking population: what it sends on, its new state, and where it
    fired (and reset v to 0)."""

    out: np.ndarray
    state: State
    fired: np.ndarray


class NeuronKind:
    """One neuron kind. Subclasses set ``name`` (and ``parameters``) and implement the
    methods below."""

    name: ClassVar[str]
    parameters: ClassVar[tuple[str, ...]] = ()
    """Keys the neuron dict may hold besides "kind"."""
    substrate: ClassVar[str] = "rate"
    roles: ClassVar[tuple[str, ...]] = ROLES
    """Where the kind may sit: "hidden" weight layers, the "output" layer, or both."""

    def check(self, neuron: dict) -> str | None:
        """The first problem with the parameters of ``neuron``, or None."""
        unknown = sorted(set(neuron) - {"kind", *self.parameters})
        if unknown:
            allowed = ", ".join(self.parameters) or "none"
            return (
                f"{self.name} neurons take no parameter {', '.join(unknown)} (allowed: {allowed})"
            )
        return None

    def is_quantised(self, neuron: dict) -> bool:
        """Whether ``neuron`` holds what fixed point needs (its integer parameters)."""
        return True

    def forward_float(self, a: np.ndarray, neuron: dict) -> np.ndarray:
        """The float64 outputs for float64 inputs ``a``."""
        raise NotImplementedError

    def forward_fixed(self, a: np.ndarray, neuron: dict) -> np.ndarray:
        """The int32 outputs Lava's fixed-point model sends for int32 inputs ``a``."""
        raise NotImplementedError

    def lava_neurons(
        self, size: int, neuron: dict, placement: Placement
    ) -> tuple[AbstractProcess, OutPort]:
        """A Lava population of ``size`` neurons (input port ``a_in``) and its output port."""
        raise NotImplementedError

    def lava_float_models(self) -> dict[type, type]:
        """ProcessModels to select for ``floating_pt`` runs, by Lava Process class."""
        return {}


class GradedNeuron(NeuronKind):
    """A stateless graded neuron with ``vth = loihi.NEURON_THRESHOLD`` (0)."""

    def lava_classes(self) -> tuple[type, type]:
        """The Lava Process and its floating_pt model (hardware.lava.processes)."""
        raise NotImplementedError

    def lava_neurons(
        self, size: int, neuron: dict, placement: Placement
    ) -> tuple[AbstractProcess, OutPort]:
        process, _ = self.lava_classes()
        population = process(shape=(size,), vth=loihi.NEURON_THRESHOLD)
        return population, population.s_out

    def lava_float_models(self) -> dict[type, type]:
        process, model = self.lava_classes()
        return {process: model}


class Relu(GradedNeuron):
    name = "relu"
    roles = ("hidden",)

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


DECAY_MIN_DU = 1 / loihi.LIF_DECAY_UNITY
DECAY_MAX_DV = loihi.LIF_DECAY_MAX / loihi.LIF_DECAY_UNITY


def decay_registers(du: float, dv: float) -> tuple[int, int]:
    """Loihi's 12-bit decays for float decays: (round(du 4096) - 1, round(dv 4096))."""
    unity = loihi.LIF_DECAY_UNITY
    return int(round(du * unity)) - loihi.LIF_CURRENT_DECAY_OFFSET, int(round(dv * unity))


class SpikingNeuron(NeuronKind):
    """A stateful neuron with Lava's current-based dynamics, run T steps per sample.

    ``floats`` are its float parameters (all required), ``integers`` the registers the
    quantiser adds (all or none).
    """

    substrate = "spiking"
    floats: ClassVar[tuple[str, ...]] = ("du", "dv")
    integers: ClassVar[tuple[str, ...]] = ("du_int", "dv_int")
    parameters = (*floats, *integers)

    def check(self, neuron: dict) -> str | None:
        problem = super().check(neuron)
        if problem:
            return problem
        missing = [key for key in self.floats if key not in neuron]
        if missing:
            return f"{self.name} neurons need {', '.join(missing)}"
        for key in self.floats:
            problem = self._float_problem(key, neuron[key])
            if problem:
                return problem
        present = [key for key in self.integers if key in neuron]
        if present and len(present) != len(self.integers):
            absent = sorted(set(self.integers) - set(present))
            return f"{self.name} neurons hold {', '.join(present)} without {', '.join(absent)}"
        for key in present:
            high = loihi.LIF_VTH_MAX if key == "vth_int" else loihi.LIF_DECAY_MAX
            value = neuron[key]
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, np.integer))
                or not (0 <= value <= high)
            ):
                return f"{key} {value!r} is not an integer in 0..{high} (Loihi's register)"
        return None

    def _float_problem(self, key: str, value: object) -> str | None:
        ranges = {"du": (DECAY_MIN_DU, 1.0), "dv": (0.0, DECAY_MAX_DV)}
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
            return f"{key} {value!r} is not a number"
        if key == "vth":
            if not (math.isfinite(value) and value > 0):
                return f"vth {value!r} must be a positive number (Loihi thresholds are unsigned)"
            return None
        low, high = ranges[key]
        if not low <= value <= high:
            return (
                f"{key} {value!r} is outside [{low:.6g}, {high:.6g}] (Loihi's 12-bit decays: "
                "du in [1/4096, 1], dv in [0, 4095/4096])"
            )
        return None

    def is_quantised(self, neuron: dict) -> bool:
        return all(key in neuron for key in self.integers)

    def initial_state(self, shape: tuple[int, ...], fixed: bool) -> State:
        """u = v = 0: int64 holding Lava's int32 state, or float64."""
        dtype = np.int64 if fixed else np.float64
        return State(np.zeros(shape, dtype), np.zeros(shape, dtype))

    def step_float(self, a: np.ndarray, state: State, neuron: dict) -> Step:
        """One float64 step for inputs ``a`` (``loihi.lif_step_float``)."""
        u, v, fired = loihi.lif_step_float(
            state.u, state.v, a, float(neuron["du"]), float(neuron["dv"]), self.threshold(neuron)
        )
        state = State(u, v)
        return Step(self.output(state, fired), state, fired)

    def step_fixed(self, a: np.ndarray, state: State, neuron: dict) -> Step:
        """One step of Lava's fixed-point LIF for int32 inputs ``a`` (``loihi.lif_step_fixed``
        with the registers; int64 output and state holding Lava's int32 values)."""
        u, v, fired = loihi.lif_step_fixed(
            state.u,
            state.v,
            a,
            int(neuron["du_int"]),
            int(neuron["dv_int"]),
            self.threshold_fixed(neuron),
        )
        state = State(u.astype(np.int64), v.astype(np.int64))
        return Step(self.output(state, fired), state, fired)

    def output(self, state: State, fired: np.ndarray) -> np.ndarray:
        """What the population sends on after a step, in the state's dtype."""
        raise NotImplementedError

    def quantised(self, neuron: dict, step: float) -> dict:
        """``neuron`` with its registers for an input unit worth ``step`` (float value of
        one a_int): du_int = round(du 4096) - 1, dv_int = round(dv 4096)."""
        du_int, dv_int = decay_registers(float(neuron["du"]), float(neuron["dv"]))
        return {**neuron, "du_int": du_int, "dv_int": dv_int}

    def threshold(self, neuron: dict) -> float:
        """The float threshold."""
        raise NotImplementedError

    def threshold_fixed(self, neuron: dict) -> int:
        """The ``vth`` register of the Lava LIF that runs this kind."""
        raise NotImplementedError

    def _lava_parameters(self, neuron: dict, placement: Placement) -> dict:
        """Decays, threshold and the reset at the first step of every sample."""
        if placement.fixed:
            decays = {"du": int(neuron["du_int"]), "dv": int(neuron["dv_int"])}
            vth: float = self.threshold_fixed(neuron)
        else:
            decays = {"du": float(neuron["du"]), "dv": float(neuron["dv"])}
            vth = self.threshold(neuron)
        return {
            **decays,
            "vth": vth,
            "reset_interval": placement.steps,
            "reset_offset": (1 + placement.depth) % placement.steps,
        }


class Lif(SpikingNeuron):
    """Hidden LIF: binary spikes, reset to zero after a spike."""

    name = "lif"
    roles = ("hidden",)
    floats = ("du", "dv", "vth")
    integers = ("du_int", "dv_int", "vth_int")
    parameters = (*floats, *integers)

    def output(self, state: State, fired: np.ndarray) -> np.ndarray:
        """The spikes, 0 or 1."""
        return fired.astype(state.v.dtype)

    def threshold(self, neuron: dict) -> float:
        return float(neuron["vth"])

    def quantised(self, neuron: dict, step: float) -> dict:
        """Also vth_int = round(vth / step), at most 131071."""
        vth_int = min(loihi.LIF_VTH_MAX, int(round(self.threshold(neuron) / step)))
        return {**super().quantised(neuron, step), "vth_int": vth_int}

    def threshold_fixed(self, neuron: dict) -> int:
        return int(neuron["vth_int"])

    def lava_neurons(
        self, size: int, neuron: dict, placement: Placement
    ) -> tuple[AbstractProcess, OutPort]:
        from lava.proc.lif.process import LIFReset

        population = LIFReset(shape=(size,), **self._lava_parameters(neuron, placement))
        return population, population.s_out


class Li(SpikingNeuron):
    """Output leaky integrator: no threshold in float; the voltage v is the output."""

    name = "li"
    roles = ("output",)

    def output(self, state: State, fired: np.ndarray) -> np.ndarray:
        """The voltage v."""
        return state.v

    def threshold(self, neuron: dict) -> float:
        return math.inf

    def threshold_fixed(self, neuron: dict) -> int:
        return loihi.LIF_VTH_MAX

    def lava_neurons(
        self, size: int, neuron: dict, placement: Placement
    ) -> tuple[AbstractProcess, OutPort]:
        from hardware.lava.processes.readout import VoltageReadout

        population = VoltageReadout(shape=(size,), **self._lava_parameters(neuron, placement))
        return population, population.v_out


NEURON_KINDS: dict[str, NeuronKind] = {kind.name: kind for kind in (Relu(), Linear(), Lif(), Li())}
"""Every neuron kind an export may hold, by its "kind" name."""


def kinds_for(substrate: str, role: str) -> list[str]:
    """Names of the neuron kinds a ``substrate`` net may hold in ``role`` (hidden/output)."""
    return [
        name
        for name, kind in NEURON_KINDS.items()
        if kind.substrate == substrate and role in kind.roles
    ]


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
