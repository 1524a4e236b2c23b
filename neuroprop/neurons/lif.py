"""The spiking neurons: Lava's current-based LIF and the non-spiking leaky read-out LI.

Dynamics per step t (Lava's ``LIF`` floating_pt model, bias 0; the fixed-point model in
``hardware.loihi`` computes the same with 12-bit decays and 24-bit state)::

    u[t] = u[t-1] (1 - du) + a[t]            synaptic current
    v[t] = v[t-1] (1 - dv) + u[t]            membrane voltage
    s[t] = H(v[t] - vth)                     spike (v > vth)
    v[t] <- 0 where s[t] = 1                 reset to zero

``du = 1, dv = 0`` is an integrate-and-fire neuron whose current is the input of the step:
a constant input a > 0 fires once every floor(vth / a) + 1 steps, a rate of about
a / (vth + a): close to the rate network's relu(a) / vth for a << vth, saturating at 1.

The surrogate gate (pseudo-derivative of the spike, e-prop's triangle; used by BrainProp's
gate and by BPTT's backward pass alike)::

    psi(v) = max(0, 1 - |v - vth| / vth) / vth         evaluated before the reset

The leaky integrator ``li`` is the same u, v dynamics without threshold or reset; as the
output layer it gives the Q-values q = v[T] / T (for du = 1, dv = 0: the synaptic current
averaged over the trial, W times the presynaptic rates).

Eligibility (BrainProp's presynaptic factor and post-synaptic gate). With the reset's
spike detached, the exact eligibility of synapse ij, e_ij[t] = dv_i[t]/dW_ij, obeys

    e_ij[t] = (1 - dv) (1 - s_i[t-1]) e_ij[t-1] + x_j[t],   x_j[t] = (1 - du) x_j[t-1] + s_pre_j[t]

(x_j: the presynaptic trace filtered as the post-synaptic current filters it, u_i = W x).
Keeping it per synapse costs O(batch x weights); neuroprop factorises it per neuron:

    e_ij[t] ~= xbar_j c_i[t],   c_i[t] = (1 - dv) (1 - s_i[t-1]) c_i[t-1] + 1
    pre_j = xbar_j = (1/T) sum_t x_j[t],     g_i = (1/T) sum_t psi_i[t] c_i[t]

so that sum_t psi_i[t] e_ij[t] ~= T g_i pre_j, exactly when x_j is constant over the trial
(a constant-current input). c_i is the reset-aware integration window of the neuron: the
membrane's response to a unit input since its last spike. For the read-out ``li`` (no
threshold, no reset): q_i = (1/T) sum_j W_ij z_j[T] with z_j[t] = (1 - dv) z_j[t-1] + x_j[t],
so pre_j = z_j[T] / T and g_i = 1 are exact. Memory: O(neurons), whatever T.

Ranges (Loihi's, so that an export can be exact): the current decay is (du_int + 1)/4096
and the voltage decay dv_int/4096 with 12-bit du_int, dv_int, so du in [1/4096, 1] and
dv in [0, 4095/4096]; vth > 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from neuroprop.errors import NeuropropError
from neuroprop.neurons.base import NeuronSpec, check_keys, number_in

DECAY_STEPS = 4096
DU_MIN = 1 / DECAY_STEPS
DV_MAX = (DECAY_STEPS - 1) / DECAY_STEPS
DECAY_WHY = "Loihi's 12-bit decays: du in [1/4096, 1], dv in [0, 4095/4096]"


@dataclass(frozen=True)
class LIFSpec(NeuronSpec):
    """Current-based LIF with reset to zero (see the module docstring)."""

    kind = "lif"
    substrate = "spiking"
    roles = ("hidden",)
    du: float = 1.0
    dv: float = 0.0
    vth: float = 1.0

    @classmethod
    def parse(cls, raw: dict[str, Any], path: str) -> LIFSpec:
        check_keys(raw, ("du", "dv", "vth"), cls.kind, path)
        vth = raw.get("vth", cls.vth)
        if isinstance(vth, bool) or not isinstance(vth, int | float) or not (
            0 < vth < math.inf
        ):
            raise NeuropropError(f"{path}.vth: expected a positive finite number (Loihi "
                                 f"thresholds are unsigned), got {vth!r}")
        return cls(du=number_in(raw, "du", cls.du, DU_MIN, 1.0, path, DECAY_WHY),
                   dv=number_in(raw, "dv", cls.dv, 0.0, DV_MAX, path, DECAY_WHY),
                   vth=float(vth))


@dataclass(frozen=True)
class LISpec(NeuronSpec):
    """The non-spiking leaky integrator that reads out Q-values: q = v[T] / T."""

    kind = "li"
    substrate = "spiking"
    roles = ("output",)
    du: float = 1.0
    dv: float = 0.0

    @classmethod
    def parse(cls, raw: dict[str, Any], path: str) -> LISpec:
        check_keys(raw, ("du", "dv"), cls.kind, path)
        return cls(du=number_in(raw, "du", cls.du, DU_MIN, 1.0, path, DECAY_WHY),
                   dv=number_in(raw, "dv", cls.dv, 0.0, DV_MAX, path, DECAY_WHY))


class State(NamedTuple):
    """Synaptic current u and membrane voltage v, (B, *shape) each."""

    u: Tensor
    v: Tensor


def surrogate(v: Tensor, vth: float) -> Tensor:
    """psi(v) = max(0, 1 - |v - vth| / vth) / vth."""
    return _triangle(v, vth).mul_(1.0 / vth)


def _triangle(v: Tensor, vth: float) -> Tensor:
    """max(0, 1 - |v - vth| / vth) = vth psi(v), in one new tensor."""
    return (v - vth).abs_().mul_(-1.0 / vth).add_(1.0).clamp_(min=0.0)


class _Spike(torch.autograd.Function):
    """H(v - vth) forward (from the precomputed ``fired = v > vth``); psi(v) backward (the
    same surrogate as BrainProp's gate)."""

    @staticmethod
    def forward(ctx: Any, v: Tensor, fired: Tensor, vth: float) -> Tensor:
        ctx.save_for_backward(v)
        ctx.vth = vth
        return fired.to(v.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (v,) = ctx.saved_tensors
        return grad * surrogate(v, ctx.vth), None, None


def _decayed(state: Tensor, decay: float) -> Tensor:
    """state (1 - decay), skipping the product when it changes nothing (decay 0)."""
    return state if decay == 0.0 else state * (1.0 - decay)


def leaky_step(a: Tensor, state: State, du: float, dv: float) -> State:
    """u = u (1 - du) + a;  v = v (1 - dv) + u  (no threshold; du = 1 gives u = a)."""
    u = a if du == 1.0 else _decayed(state.u, du) + a
    return State(u, _decayed(state.v, dv) + u)


def lif_step(a: Tensor, state: State, spec: LIFSpec) -> tuple[Tensor, State, Tensor]:
    """One LIF step: (spikes s, state after the reset, voltage v before the reset).

    The spike is differentiable through the surrogate; the reset uses the spike detached
    (v <- v (1 - s), as snnTorch does), written as a masked fill.
    """
    u, v = leaky_step(a, state, spec.du, spec.dv)
    fired = v.detach() > spec.vth
    s = _Spike.apply(v, fired, spec.vth)
    return s, State(u, v.masked_fill(fired, 0.0)), v


class Trace(NamedTuple):
    """A running trace (B, *shape) and its accumulator over the trial."""

    x: Tensor
    acc: Tensor


def _filtered_(x: Tensor, s_pre: Tensor, du: float) -> Tensor:
    """x (1 - du) + s_pre, in place on x; for du = 1 the input itself (never written to:
    it is the layer below's output)."""
    return s_pre if du == 1.0 else x.mul_(1.0 - du).add_(s_pre)


class LIF:
    """The LIF neuron bound to its spec: steps, eligibility traces and the surrogate gate."""

    has_gate = True

    def __init__(self, spec: LIFSpec) -> None:
        self.spec = spec

    def step(self, a: Tensor, state: State) -> tuple[Tensor, State, Tensor]:
        """Spikes, the new state and the voltage before the reset."""
        return lif_step(a, state, self.spec)

    def trace_step(self, trace: Trace, s_pre: Tensor) -> Trace:
        """x = x (1 - du) + s_pre; acc += x."""
        x = _filtered_(trace.x, s_pre, self.spec.du)
        return Trace(x, trace.acc.add_(x))

    def eligibility(self, trace: Trace, steps: int) -> Tensor:
        """pre_j = (1/T) sum_t x_j[t]."""
        return trace.acc.div_(steps)

    def gate_step(self, window: Trace, v: Tensor, s: Tensor) -> Trace:
        """c = c (1 - dv) + 1; acc += psi(v) c; then c = 0 where the neuron spiked
        (``window.x`` holds c after the reset)."""
        c = window.x if self.spec.dv == 0.0 else window.x.mul_(1.0 - self.spec.dv)
        c = c.add_(1.0)
        vth = self.spec.vth
        acc = window.acc.addcmul_(_triangle(v.detach(), vth), c, value=1.0 / vth)
        return Trace(c.mul_(1.0 - s.detach()), acc)

    def gate(self, window: Trace, steps: int) -> Tensor:
        """g_i = (1/T) sum_t psi_i[t] c_i[t]."""
        return window.acc.div_(steps)


class LI:
    """The leaky integrator read-out bound to its spec: q = v[T] / T, gate 1."""

    has_gate = False

    def __init__(self, spec: LISpec) -> None:
        self.spec = spec

    def step(self, a: Tensor, state: State) -> tuple[Tensor, State, Tensor]:
        """The voltage (the output), the new state and the voltage again."""
        state = leaky_step(a, state, self.spec.du, self.spec.dv)
        return state.v, state, state.v

    def trace_step(self, trace: Trace, s_pre: Tensor) -> Trace:
        """x = x (1 - du) + s_pre; z = z (1 - dv) + x (``acc`` holds z)."""
        x = _filtered_(trace.x, s_pre, self.spec.du)
        z = trace.acc if self.spec.dv == 0.0 else trace.acc.mul_(1.0 - self.spec.dv)
        return Trace(x, z.add_(x))

    def eligibility(self, trace: Trace, steps: int) -> Tensor:
        """pre_j = z_j[T] / T = dq_i / dW_ij."""
        return trace.acc.div_(steps)

    @staticmethod
    def readout(v: Tensor, steps: int) -> Tensor:
        """Q-values from the final voltage: q = v[T] / T."""
        return v / steps
